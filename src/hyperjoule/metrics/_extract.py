"""Extracting a run's metrics from its log and its metrics file.

Three sources, most explicit first: the JSON file named by ``HYPERJOULE_METRICS_FILE``,
structured log lines ``HYPERJOULE_METRICS {json}`` (the last value of each name wins),
and per-metric regex fallbacks with an explicit ``match: first|last``. Every value is a
finite float and every name a short printable string (``_bounds``); anything else is a
metrics problem, counted and capped, never an exception. The log is streamed in
fixed-size chunks (``_logscan``); the metrics file is read only when it is a regular
file no larger than ``MAX_JSON_BYTES`` (a FIFO or ``/dev/zero`` is refused, not read).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hyperjoule.metrics._bounds import (
    MAX_JSON_BYTES,
    MAX_METRICS,
    ProblemLog,
    as_metric_value,
    check_metric_name,
    parse_bounded_json,
)
from hyperjoule.metrics._logscan import iter_log_lines, open_regular_file

__all__ = [
    "STRUCTURED_PREFIX",
    "ExtractedMetrics",
    "MetricPattern",
    "extract_metrics",
    "extract_metrics_from_lines",
]

STRUCTURED_PREFIX = "HYPERJOULE_METRICS"
"""Marker of a structured metrics line: ``HYPERJOULE_METRICS {"name": value, ...}``."""

_STRUCTURED = re.compile(re.escape(STRUCTURED_PREFIX) + r"\s+(\{.*)$")
_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class MetricPattern:
    """Regex fallback for one metric: one capture group holding the number."""

    regex: str
    match: Literal["first", "last"] = "last"


@dataclass
class ExtractedMetrics:
    """What was found.

    Attributes:
        values: Metric name to value (at most ``MAX_METRICS`` names).
        sources: Metric name to where its value came from (``file``, ``structured``,
            ``regex``).
        problems: Things that looked like metrics but could not be used, one line each;
            at most ``MAX_PROBLEMS`` plus one line counting the rest.
    """

    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Collector:
    """Values of one source, with the per-run limits applied."""

    problems: ProblemLog
    values: dict[str, float] = field(default_factory=dict)

    def put_object(self, data: Mapping[str, Any], where: str, taken: int) -> None:
        for raw_name, raw in data.items():
            name = check_metric_name(raw_name, where, self.problems)
            if name is None:
                continue
            value = as_metric_value(name, raw, where, self.problems)
            if value is None:
                continue
            if name not in self.values and taken + len(self.values) >= MAX_METRICS:
                self.problems.add(f"{where}: more than {MAX_METRICS} metric names; rest dropped")
                continue
            self.values[name] = value


def _structured(line: str, where: str, into: _Collector, *, cut: bool) -> None:
    match = _STRUCTURED.search(line)
    if match is None:
        return
    if cut:
        into.problems.add(f"{where}: {STRUCTURED_PREFIX} line too long; not read")
        return
    data = parse_bounded_json(match.group(1), where, into.problems)
    if data is not None:
        into.put_object(data, where, 0)


def _scan(
    lines: Iterable[str], patterns: Mapping[str, MetricPattern], where: str, problems: ProblemLog
) -> ExtractedMetrics:
    compiled = {name: re.compile(p.regex) for name, p in patterns.items()}
    structured = _Collector(problems)
    regex_values = _Collector(problems)
    first_only = {name for name, p in patterns.items() if p.match == "first"}
    for number, chunk in enumerate(lines, start=1):
        # Lines from iter_log_lines hold no line ends; callers' lines may still.
        pieces = _LINE_SPLIT.split(chunk) if ("\r" in chunk or "\n" in chunk) else (chunk,)
        for line in pieces:
            if not line:
                continue
            if STRUCTURED_PREFIX in line:
                cut = line is chunk and getattr(chunk, "cut", False)
                _structured(line, f"{where}:{number}", structured, cut=cut)
            for name, regex in compiled.items():
                if name in first_only and name in regex_values.values:
                    continue
                found = regex.search(line)
                if found is None:
                    continue
                value = as_metric_value(name, found.group(1), f"{where}:{number}", problems)
                if value is not None:
                    regex_values.values[name] = value
    result = ExtractedMetrics()
    for name, value in regex_values.values.items():
        result.values[name] = value
        result.sources[name] = "regex"
    for name, value in structured.values.items():
        if name not in result.values and len(result.values) >= MAX_METRICS:
            problems.add(f"{where}: more than {MAX_METRICS} metric names; rest dropped")
            continue
        result.values[name] = value
        result.sources[name] = "structured"
    return result


def extract_metrics_from_lines(
    lines: Iterable[str], *, patterns: Mapping[str, MetricPattern], where: str = "log"
) -> ExtractedMetrics:
    """Extract metrics from log lines (structured lines first, then regex fallbacks).

    Args:
        lines: Log lines; each may still contain ``CR`` separators.
        patterns: Regex fallbacks by metric name.
        where: Name of the source used in problem messages.
    """
    problems = ProblemLog()
    result = _scan(lines, patterns, where, problems)
    result.problems = problems.lines()
    return result


def _read_metrics_file(path: Path, problems: ProblemLog) -> str | None:
    """The metrics file's text, or None (with a problem) when it must not be read."""
    try:
        with open_regular_file(path) as f:
            if os.fstat(f.fileno()).st_size > MAX_JSON_BYTES:
                problems.add(f"{path.name}: metrics file larger than {MAX_JSON_BYTES} bytes")
                return None
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        problems.add(f"{path.name}: metrics file not read ({e.strerror})")
        return None
    if len(data) > MAX_JSON_BYTES:
        problems.add(f"{path.name}: metrics file larger than {MAX_JSON_BYTES} bytes")
        return None
    return data.decode("utf-8", errors="replace")


def extract_metrics(
    log_path: Path,
    *,
    patterns: Mapping[str, MetricPattern],
    metrics_file: Path | None = None,
) -> ExtractedMetrics:
    """Extract a run's metrics from its log and, when present, its metrics file.

    The metrics file wins over structured lines, which win over regex matches.
    A missing log yields no metrics (and a problem), never an exception.
    """
    problems = ProblemLog()
    try:
        result = _scan(iter_log_lines(log_path), patterns, log_path.name, problems)
    except OSError as e:
        result = ExtractedMetrics()
        problems.add(f"{log_path.name}: cannot read log ({e.strerror})")
    if metrics_file is not None:
        text = _read_metrics_file(metrics_file, problems)
        data = None if text is None else parse_bounded_json(text, metrics_file.name, problems)
        if data is not None:
            from_file = _Collector(problems)
            kept = {n for n in result.values if n not in data}
            from_file.put_object(data, metrics_file.name, len(kept))
            for name, value in from_file.values.items():
                result.values[name] = value
                result.sources[name] = "file"
    result.problems = problems.lines()
    return result
