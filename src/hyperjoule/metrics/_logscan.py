"""Reading a log line by line in fixed-size chunks, whatever its line endings.

``CR`` counts as a line end, so 190 MB of progress-bar redraws are many short lines,
and a line longer than :data:`MAX_LINE_BYTES` is cut: memory stays bounded by the
chunk size plus one line, never by the size of the log or of its longest line.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hyperjoule.metrics._bounds import MAX_LINE_BYTES

__all__ = ["CHUNK_BYTES", "CutLine", "iter_log_lines", "open_regular_file"]

CHUNK_BYTES = 256 * 1024
_LINE_END = re.compile(r"\r\n|\r|\n")


class CutLine(str):
    """The first ``MAX_LINE_BYTES`` of a longer line (the rest was skipped)."""

    __slots__ = ()
    cut = True


def open_regular_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file.

    A target can replace its log or metrics file by a FIFO (reading would wait forever)
    or a link to ``/dev/zero`` (reading would never end); neither is read.

    Raises:
        OSError: It cannot be opened, or it is not a regular file (``EINVAL``).
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer that never comes.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _last_line_end(buffer: bytes) -> int:
    return max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))


def iter_log_lines(log_path: Path) -> Iterator[str]:
    """Yield the non-empty lines of ``log_path``; a too-long line as a :class:`CutLine`.

    Complete lines of each chunk are decoded and split at once (the hot path on a
    200 MB log); only the unfinished tail of a chunk is carried to the next one.

    Raises:
        OSError: The log cannot be opened or read.
    """
    pending = b""  # the start of a line whose end has not been read yet
    skipping = False  # the current line passed the limit: drop it up to its end
    with open_regular_file(log_path) as f:
        # Only what was there when reading began: an escaped writer cannot make it endless.
        remaining = os.fstat(f.fileno()).st_size
        while remaining > 0 and (chunk := f.read(min(CHUNK_BYTES, remaining))):
            remaining -= len(chunk)
            buffer = pending + chunk
            end = _last_line_end(buffer)
            if end >= 0:
                lines = _LINE_END.split(buffer[: end + 1].decode("utf-8", errors="replace"))
                if skipping:
                    lines[0] = ""  # the rest of the line already cut
                    skipping = False
                for line in lines:
                    if len(line) > MAX_LINE_BYTES:
                        yield CutLine(line[:MAX_LINE_BYTES])
                    elif line:
                        yield line
                buffer = buffer[end + 1 :]
            pending = b"" if skipping else buffer
            if len(pending) > MAX_LINE_BYTES:
                yield CutLine(pending[:MAX_LINE_BYTES].decode("utf-8", errors="replace"))
                pending, skipping = b"", True
        if pending:
            yield pending.decode("utf-8", errors="replace")
