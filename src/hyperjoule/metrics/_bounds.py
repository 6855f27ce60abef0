"""Limits on what a target can hand the extractor: names, numbers, JSON, problem lists.

A target's output is data, never control: every name and value is checked here, at
the one place metrics enter a record, so nothing downstream (database, ``run.json``,
``summary.csv``, report, terminal) ever sees an unbounded or unencodable string.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hyperjoule._text import safe_text

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LINE_BYTES",
    "MAX_METRICS",
    "MAX_NAME_CHARS",
    "MAX_NUMBER_CHARS",
    "MAX_PROBLEMS",
    "ProblemLog",
    "as_metric_value",
    "check_metric_name",
    "parse_bounded_json",
    "shown",
]

MAX_NAME_CHARS = 128
"""Longest metric name kept."""
MAX_METRICS = 200
"""Most distinct metric names kept per run; later names are dropped as problems."""
MAX_PROBLEMS = 20
"""Problems kept per run; the rest are only counted."""
MAX_NUMBER_CHARS = 40
"""Longest number literal read (a float64 needs at most 17 significant digits)."""
MAX_JSON_BYTES = 1024 * 1024
"""Largest metrics file or structured line parsed."""
MAX_JSON_DEPTH = 4
"""Deepest nesting parsed (metrics are a flat object; a little slack for odd writers)."""
MAX_LINE_BYTES = MAX_JSON_BYTES
"""Longest log line examined; the rest of a longer line is skipped."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def shown(value: object) -> str:
    """A short, printable rendering of an untrusted value for a problem message."""
    return safe_text(repr(value) if not isinstance(value, str) else value, 60)


@dataclass
class ProblemLog:
    """Problems of one run: the first :data:`MAX_PROBLEMS` kept, the rest counted."""

    kept: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, message: str) -> None:
        """Record one problem (already made printable by the caller)."""
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(safe_text(message, 300))
        else:
            self.dropped += 1

    def lines(self) -> list[str]:
        """The kept problems, plus one line counting those not kept."""
        if not self.dropped:
            return list(self.kept)
        return [*self.kept, f"... and {self.dropped} more metrics problem(s) not kept"]


class _Number(str):
    """A JSON number literal kept as text, so its size is checked before converting."""

    __slots__ = ()


def _depth_of(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_bounded_json(text: str, where: str, problems: ProblemLog) -> dict[str, Any] | None:
    """Parse a JSON object of metrics within size and depth limits.

    Numbers stay text (checked by :func:`as_metric_value`), so a 5,000-digit integer
    or ``1e400`` is a problem, never an exception. Returns None (and records a
    problem) for anything that is not a usable JSON object.
    """
    if len(text) > MAX_JSON_BYTES:
        problems.add(f"{where}: metrics JSON larger than {MAX_JSON_BYTES} bytes; not read")
        return None
    if _depth_of(text) > MAX_JSON_DEPTH:
        problems.add(f"{where}: metrics JSON nested deeper than {MAX_JSON_DEPTH}; not read")
        return None
    try:
        data = json.loads(text, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except (ValueError, RecursionError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
        problems.add(f"{where}: unreadable metrics JSON ({reason})")
        return None
    if not isinstance(data, dict):
        problems.add(f"{where}: metrics JSON must be an object of name: number")
        return None
    return data


def check_metric_name(raw: object, where: str, problems: ProblemLog) -> str | None:
    """Return ``raw`` when it is a usable metric name, else record why and return None."""
    if not isinstance(raw, str) or not raw:
        problems.add(f"{where}: metric name {shown(raw)} must be a non-empty string")
        return None
    if len(raw) > MAX_NAME_CHARS:
        problems.add(f"{where}: metric name {shown(raw)} longer than {MAX_NAME_CHARS} characters")
        return None
    # Rejects control characters (ESC/OSC sequences), lone surrogates, odd spaces.
    if not raw.isprintable() or raw != raw.strip():
        problems.add(f"{where}: metric name {shown(raw)} has unprintable characters")
        return None
    return raw


def as_metric_value(name: str, raw: Any, where: str, problems: ProblemLog) -> float | None:
    """Convert one metric value to a finite float, or record why not and return None."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        problems.add(f"{where}: {name}: {shown(raw)} is not a number")
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > MAX_NUMBER_CHARS:
            problems.add(f"{where}: {name}: number with {len(text)} characters is too long")
            return None
        try:
            value = float(text)
        except ValueError:
            problems.add(f"{where}: {name}: {shown(raw)} is not a number")
            return None
    else:
        try:
            value = float(raw)
        except OverflowError:
            problems.add(f"{where}: {name}: number out of range")
            return None
    if not math.isfinite(value):
        problems.add(f"{where}: {name}: {shown(raw)} is not finite")
        return None
    return value
