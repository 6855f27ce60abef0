"""Metrics: one extractor for structured lines, the metrics file and regex fallbacks."""

from hyperjoule.metrics._extract import (
    STRUCTURED_PREFIX,
    ExtractedMetrics,
    MetricPattern,
    extract_metrics,
    extract_metrics_from_lines,
)
from hyperjoule.metrics._logscan import open_regular_file

__all__ = [
    "STRUCTURED_PREFIX",
    "ExtractedMetrics",
    "MetricPattern",
    "extract_metrics",
    "extract_metrics_from_lines",
    "open_regular_file",
]
