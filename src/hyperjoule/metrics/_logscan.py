"""Reading a log line by line in fixed-size chunks, whatever its line endings.

``CR`` counts as a line end, so 190 MB of progress-bar redraws are many short lines,
and a line longer than :data:`MAX_LINE_BYTES` is cut: memory stays bounded by the
chunk size plus one line, never by the size of the log or of its longest line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from hyperjoule.metrics._bounds import MAX_LINE_BYTES

__all__ = ["CHUNK_BYTES", "LogLine", "iter_log_lines"]

CHUNK_BYTES = 256 * 1024
_LINE_END = re.compile(rb"\r\n|\r|\n")


class LogLine(str):
    """One decoded log line; ``cut`` is True when the line was longer than the limit."""

    __slots__ = ("cut",)
    cut: bool


def _line(raw: bytes, cut: bool) -> LogLine:
    line = LogLine(raw.decode("utf-8", errors="replace"))
    line.cut = cut
    return line


def iter_log_lines(log_path: Path) -> Iterator[LogLine]:
    """Yield the non-empty lines of ``log_path``, each at most ``MAX_LINE_BYTES`` long.

    Raises:
        OSError: The log cannot be opened or read.
    """
    pending = b""  # the start of a line whose end has not been read yet
    skipping = False  # the current line passed the limit: drop bytes until its end
    with open(log_path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            buffer = pending + chunk
            start = 0
            for end in _LINE_END.finditer(buffer):
                if not skipping and end.start() > start:
                    yield _line(buffer[start : end.start()], False)
                skipping = False
                start = end.end()
            pending = buffer[start:]
            if skipping:
                pending = b""
            elif len(pending) > MAX_LINE_BYTES:
                yield _line(pending[:MAX_LINE_BYTES], True)
                pending, skipping = b"", True
        if pending and not skipping:
            yield _line(pending, False)
