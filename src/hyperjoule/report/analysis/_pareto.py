"""Pareto fronts of energy against a performance metric.

A run is on the front when no other run used no more energy and performed at least as
well, being strictly better in one of the two. Identical points are all on the front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hyperjoule.report.load._frame import hp_columns
from hyperjoule.report.load._goals import LOWER_IS_BETTER_WORDS, guess_maximize

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOWER_IS_BETTER_WORDS", "metric_direction", "pareto_front", "pareto_table"]


def metric_direction(name: str) -> bool:
    """Guess from its name whether a higher value of metric ``name`` is better.

    Only a guess: analyses use the goal a target declared (:class:`MetricGoals`) and
    fall back to this, labelled guessed.
    """
    return guess_maximize(name)


def pareto_front(
    energy_j: npt.ArrayLike, metric: npt.ArrayLike, *, maximize: bool = True
) -> npt.NDArray[np.bool_]:
    """Mask of the points not dominated in (less energy, better metric).

    Points with a missing energy or metric are never on the front. O(n log n).

    Args:
        energy_j: Energy of each run, in joules (lower is better).
        metric: Performance of each run.
        maximize: Whether a higher metric is better.
    """
    e = np.asarray(energy_j, dtype=np.float64)
    m = np.asarray(metric, dtype=np.float64)
    if not maximize:
        m = -m
    valid = np.isfinite(e) & np.isfinite(m)
    front = np.zeros(e.shape, dtype=bool)
    if not valid.any():
        return front
    ev, mv = e[valid], m[valid]
    levels, level_of = np.unique(ev, return_inverse=True)
    # Best metric at each distinct energy, then the best at any strictly lower energy.
    best_at = np.full(levels.size, -np.inf)
    np.maximum.at(best_at, level_of, mv)
    best_below = np.concatenate(([-np.inf], np.maximum.accumulate(best_at)[:-1]))
    dominated = (best_below[level_of] >= mv) | (best_at[level_of] > mv)
    front[np.flatnonzero(valid)[~dominated]] = True
    return front


def pareto_table(
    runs: pd.DataFrame,
    metric: str,
    *,
    energy: str = "energy_total_j",
    maximize: bool | None = None,
) -> pd.DataFrame:
    """The runs on the energy/metric Pareto front, cheapest first.

    Only succeeded runs count. Columns: run_id, target, model, mode, the energy and metric
    columns, then the hyperparameters that are set for these runs.

    Args:
        runs: Rows of the flat run table (usually one target/model).
        metric: A ``metric_*`` column.
        energy: The energy column (joules).
        maximize: Whether higher is better; None: from the metric's name.
    """
    if maximize is None:
        maximize = metric_direction(metric)
    ok = runs[runs["status"] == "succeeded"]
    mask = pareto_front(ok[energy].to_numpy(), ok[metric].to_numpy(), maximize=maximize)
    front = ok[mask]
    hps = [c for c in hp_columns(front.columns) if front[c].notna().any()]
    columns = ["run_id", "target", "model", "mode", energy, metric, *hps]
    table: pd.DataFrame = front[columns].sort_values(
        [energy, metric], ascending=[True, not maximize]
    )
    return table
