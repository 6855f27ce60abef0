"""Extracting a run's metrics from its log and its metrics file.

Three sources, most explicit first: the JSON file named by ``HYPERJOULE_METRICS_FILE``,
structured log lines ``HYPERJOULE_METRICS {json}`` (the last value of each name wins),
and per-metric regex fallbacks with an explicit ``match: first|last``. Every value is a
finite float. The log is read line by line (``CR`` counts as a line end, so progress
bars do not glue lines together); it is never loaded whole.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "STRUCTURED_PREFIX",
    "ExtractedMetrics",
    "MetricPattern",
    "extract_metrics",
    "extract_metrics_from_lines",
]

logger = logging.getLogger(__name__)

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
        values: Metric name to value.
        sources: Metric name to where its value came from (``file``, ``structured``,
            ``regex``).
        problems: Things that looked like metrics but could not be used, one line each.
    """

    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _as_float(name: str, raw: Any, where: str, problems: list[str]) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        problems.append(f"{where}: {name}: {raw!r} is not a number")
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{where}: {name}: {raw!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{where}: {name}: {raw!r} is not finite")
        return None
    return value


def _structured_values(text: str, where: str, problems: list[str]) -> dict[str, float]:
    match = _STRUCTURED.search(text)
    if match is None:
        return {}
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError as e:
        problems.append(f"{where}: unreadable {STRUCTURED_PREFIX} line ({e.msg})")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{where}: {STRUCTURED_PREFIX} needs a JSON object")
        return {}
    values: dict[str, float] = {}
    for name, raw in data.items():
        value = _as_float(str(name), raw, where, problems)
        if value is not None:
            values[str(name)] = value
    return values


def extract_metrics_from_lines(
    lines: Iterable[str], *, patterns: Mapping[str, MetricPattern], where: str = "log"
) -> ExtractedMetrics:
    """Extract metrics from log lines (structured lines first, then regex fallbacks).

    Args:
        lines: Log lines; each may still contain ``CR`` separators.
        patterns: Regex fallbacks by metric name.
        where: Name of the source used in problem messages.
    """
    compiled = {name: re.compile(p.regex) for name, p in patterns.items()}
    structured: dict[str, float] = {}
    regex_values: dict[str, float] = {}
    problems: list[str] = []
    for number, chunk in enumerate(lines, start=1):
        for line in _LINE_SPLIT.split(chunk):
            if not line:
                continue
            if STRUCTURED_PREFIX in line:
                structured.update(_structured_values(line, f"{where}:{number}", problems))
            for name, regex in compiled.items():
                if patterns[name].match == "first" and name in regex_values:
                    continue
                found = regex.search(line)
                if found is None:
                    continue
                value = _as_float(name, found.group(1), f"{where}:{number}", problems)
                if value is not None:
                    regex_values[name] = value
    result = ExtractedMetrics(problems=problems)
    for name, value in regex_values.items():
        result.values[name] = value
        result.sources[name] = "regex"
    for name, value in structured.items():
        result.values[name] = value
        result.sources[name] = "structured"
    return result


def _read_lines(log_path: Path) -> Iterable[str]:
    with open(log_path, "rb") as f:
        for raw in f:
            yield raw.decode("utf-8", errors="replace")


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
    try:
        result = extract_metrics_from_lines(
            _read_lines(log_path), patterns=patterns, where=log_path.name
        )
    except OSError as e:
        result = ExtractedMetrics(problems=[f"{log_path}: cannot read log ({e.strerror})"])
    if metrics_file is not None and metrics_file.exists():
        try:
            data = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            result.problems.append(f"{metrics_file.name}: unreadable metrics file ({e})")
            return result
        if not isinstance(data, dict):
            result.problems.append(f"{metrics_file.name}: needs a JSON object")
            return result
        for name, raw in data.items():
            value = _as_float(str(name), raw, metrics_file.name, result.problems)
            if value is not None:
                result.values[str(name)] = value
                result.sources[str(name)] = "file"
    return result
