"""Parallel-mode runs (a background load on the machine) against isolated runs.

Where the same configuration (target, model and every hyperparameter) ran both ways, the
runs are paired; otherwise only the groups' distributions can be compared, which mixes
the effect of the load with that of different hyperparameters (the report says so).
Parallel-mode energy is ``combined`` (foreground and background share the meters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hyperjoule.report.analysis._stats import bootstrap_ci, mean_ci
from hyperjoule.report.analysis._summary import group_labels
from hyperjoule.report.load._frame import hp_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ParallelComparison", "parallel_vs_isolated"]


@dataclass
class ParallelComparison:
    """Parallel against isolated runs.

    Attributes:
        by_group: Per target/model with both kinds of run: ``isolated_n``,
            ``isolated_energy_j`` (mean) with ``_low``/``_high``, the same for
            ``parallel_``, and ``energy_ratio`` (parallel mean / isolated mean).
        matched: Per configuration run both ways: ``group``, ``isolated_run_id`` and
            ``parallel_run_id`` (one run of each kind), ``isolated_n``,
            ``parallel_n``, mean ``isolated_energy_j``, ``parallel_energy_j``,
            ``energy_ratio``, ``isolated_duration_s``, ``parallel_duration_s``,
            ``duration_ratio``.
        median_ratio: Median energy ratio over matched configurations, with a bootstrap
            95 % interval (NaN below three configurations).
    """

    by_group: pd.DataFrame
    matched: pd.DataFrame
    median_ratio: tuple[float, float, float]


def parallel_vs_isolated(runs: pd.DataFrame) -> ParallelComparison | None:
    """Compare succeeded parallel-mode runs with succeeded isolated ones.

    Returns None unless some target/model has succeeded runs with energy of both kinds.
    """
    import pandas as pd

    ok = runs[(runs["status"] == "succeeded") & runs["energy_total_j"].notna()]
    ok = ok.assign(group=group_labels(ok), parallel=ok["mode"] == "parallel")
    if not ok["parallel"].any() or ok["parallel"].all():
        return None
    rows = []
    for group, part in ok.groupby("group", sort=True):
        iso = mean_ci(part.loc[~part["parallel"], "energy_total_j"].to_numpy())
        par = mean_ci(part.loc[part["parallel"], "energy_total_j"].to_numpy())
        if iso.n == 0 or par.n == 0:
            continue
        rows.append(
            {
                "group": group,
                "isolated_n": iso.n,
                "isolated_energy_j": iso.value,
                "isolated_energy_j_low": iso.low,
                "isolated_energy_j_high": iso.high,
                "parallel_n": par.n,
                "parallel_energy_j": par.value,
                "parallel_energy_j_low": par.low,
                "parallel_energy_j_high": par.high,
                "energy_ratio": par.value / iso.value if iso.value else math.nan,
            }
        )
    if not rows:  # parallel runs of some models, isolated runs of others: no pair
        return None
    by_group = pd.DataFrame(rows)
    # Identical hyperparameter rows hash alike; target and model are in the group.
    key = pd.util.hash_pandas_object(ok[hp_columns(ok.columns)], index=False)
    ok = ok.assign(config=key.to_numpy())
    agg = ok.groupby(["group", "config", "parallel"]).agg(
        n=("run_id", "size"),
        run_id=("run_id", "first"),
        energy_j=("energy_total_j", "mean"),
        duration_s=("duration_s", "mean"),
    )
    # Both kinds exist (checked above), so both columns exist after unstacking.
    wide = agg.unstack("parallel").dropna(subset=[("n", False), ("n", True)])
    matched = pd.DataFrame(
        {
            "isolated_run_id": wide[("run_id", False)],
            "parallel_run_id": wide[("run_id", True)],
            "isolated_n": wide[("n", False)].astype(int),
            "parallel_n": wide[("n", True)].astype(int),
            "isolated_energy_j": wide[("energy_j", False)],
            "parallel_energy_j": wide[("energy_j", True)],
            "isolated_duration_s": wide[("duration_s", False)],
            "parallel_duration_s": wide[("duration_s", True)],
        },
        index=wide.index,
    )
    matched["energy_ratio"] = matched["parallel_energy_j"] / matched["isolated_energy_j"]
    matched["duration_ratio"] = matched["parallel_duration_s"] / matched["isolated_duration_s"]
    matched = matched.reset_index().drop(columns=["config"], errors="ignore")
    ratios = matched["energy_ratio"].to_numpy(dtype=np.float64)
    ratios = ratios[np.isfinite(ratios)]
    median = (math.nan, math.nan, math.nan)
    if ratios.size >= 3:
        low, high = bootstrap_ci(lambda idx: float(np.median(ratios[idx])), ratios.size)
        median = (float(np.median(ratios)), low, high)
    elif ratios.size:
        median = (float(np.median(ratios)), math.nan, math.nan)
    return ParallelComparison(by_group=by_group, matched=matched, median_ratio=median)
