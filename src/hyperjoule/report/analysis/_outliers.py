"""Metric values on a different scale from the rest of their target/model.

The lab logged one model's accuracy as 0.75 in some runs and 4,164 in others (a logging
bug). Such a value is not a trade-off; it must not sit on a Pareto front unflagged. Within
one target/model, a metric whose succeeded values span :data:`SPAN_FACTOR` or more is
checked, and each value more than :data:`FAR_FACTOR` from the group's median is flagged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FAR_FACTOR", "SPAN_FACTOR", "scale_outliers"]

SPAN_FACTOR = 100.0
"""A metric is checked when its largest value is this many times its smallest (two
orders of magnitude) within one target/model."""

FAR_FACTOR = 10.0
"""A value this many times above or below the group's median is flagged."""


def scale_outliers(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Flagged values per target/model and metric.

    Args:
        runs: The run table with a ``group`` column (target/model).
        metrics: The ``metric_*`` columns to check.

    Returns:
        Columns ``group``, ``metric``, ``run_id``, ``value``, ``median``, ``span``
        (largest over smallest value of the group), one row per flagged run.
    """
    import pandas as pd

    rows: list[dict[str, object]] = []
    ok = runs[runs["status"] == "succeeded"]
    for group, part in ok.groupby("group", sort=True):
        for metric in metrics:
            values = part[metric].dropna()
            positive = values[values > 0]
            if len(positive) < 3:
                continue  # too few values to tell which scale is the odd one
            span = float(positive.max() / positive.min())
            if span < SPAN_FACTOR:
                continue
            median = float(positive.median())
            far = np.abs(np.log10(positive / median)) >= np.log10(FAR_FACTOR)
            for index in positive[far].index:
                rows.append(
                    {
                        "group": group,
                        "metric": metric,
                        "run_id": part.at[index, "run_id"],
                        "value": float(positive[index]),
                        "median": median,
                        "span": span,
                    }
                )
    columns = ["group", "metric", "run_id", "value", "median", "span"]
    flagged: pd.DataFrame = pd.DataFrame(rows, columns=columns)
    return flagged
