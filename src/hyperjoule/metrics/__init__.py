"""Metrics: one extractor for structured lines, the metrics file and regex fallbacks."""

from hyperjoule.metrics._extract import (
    STRUCTURED_PREFIX,
    ExtractedMetrics,
    MetricPattern,
    extract_metrics,
    extract_metrics_from_lines,
)

__all__ = [
    "STRUCTURED_PREFIX",
    "ExtractedMetrics",
    "MetricPattern",
    "extract_metrics",
    "extract_metrics_from_lines",
]
