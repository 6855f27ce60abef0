"""Tables behind the report: per target/model summary and the study's cost.

Every function takes the flat run table (``load_runs``) and works on whole columns, so
100,000 runs take well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.errors import ReportError
from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.analysis._stats import observed_domain, t_quantile_975
from hyperjoule.report.load._frame import HP_PREFIX, METRIC_PREFIX, hp_columns, metric_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SUMMARY_FIGURES",
    "ReportError",
    "StudyCost",
    "analysed_metrics",
    "group_labels",
    "group_summary",
    "method_mix",
    "study_cost",
    "sum_or_none",
]


SUMMARY_FIGURES = ("duration_s", "energy_gpu_j", "energy_cpu_j", "energy_total_j")
"""Figures summarised per group besides the metrics (``energy_cpu_j`` = package + DRAM)."""


def group_labels(runs: pd.DataFrame) -> pd.Series[str]:
    """``target/model`` (or ``target`` without a model) of every run."""
    model = ("/" + runs["model"].astype("str")).fillna("")
    labels: pd.Series[str] = (runs["target"].astype("str") + model).rename("group")
    return labels


MAX_ANALYSED_METRICS = 24
"""Most metrics the report analyses (fronts, sensitivity, summary columns)."""


def analysed_metrics(runs: pd.DataFrame) -> list[str]:
    """``metric_*`` columns worth analysing: measured somewhere, not a hyperparameter echo.

    Ordered accuracy-like first, training-set metrics last.

    Training scripts often report a hyperparameter back as a metric (``epochs``); such a
    column says nothing about performance and is left out of fronts and rankings.
    """
    hps = {c.removeprefix(HP_PREFIX) for c in hp_columns(runs.columns)}
    found = [
        c
        for c in metric_columns(runs.columns)
        if c.removeprefix(METRIC_PREFIX) not in hps and runs[c].notna().any()
    ]
    # Accuracy-like metrics first, training-set metrics last: the order plots are drawn in.
    ordered = sorted(found, key=lambda c: ("acc" not in c, c.startswith("metric_train"), c))
    # A target printing hundreds of names would make hundreds of figures: keep the first.
    return ordered[:MAX_ANALYSED_METRICS]


def metrics_left_out(runs: pd.DataFrame, analysed: list[str]) -> int:
    """How many recorded ``metric_*`` columns the report does not analyse."""
    measured = [c for c in metric_columns(runs.columns) if runs[c].notna().any()]
    return max(0, len(measured) - len(analysed))


def method_mix(methods: pd.Series[Any]) -> str:
    """``counter`` when every run agrees, else ``counter 90%, estimated 10%``."""
    shares = methods.fillna("unavailable").value_counts(normalize=True)
    if len(shares) == 1:
        return str(shares.index[0])
    return ", ".join(f"{name} {share:.0%}" for name, share in shares.items())


def _with_cpu(runs: pd.DataFrame) -> pd.DataFrame:
    out: pd.DataFrame = runs.copy()
    # CPU = package + DRAM; DRAM is absent on many machines, the package alone then counts.
    out["energy_cpu_j"] = runs["energy_cpu_pkg_j"].add(runs["energy_cpu_dram_j"], fill_value=0)
    out["group"] = group_labels(runs)
    return out


def group_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per target/model: runs, success rate, and mean with 95 % t interval of each figure.

    Intervals are clipped to each figure's observed domain (``observed_domain``).

    Means are over succeeded runs. Columns: ``group``, ``target``, ``model``, ``runs``,
    ``succeeded``, ``success_rate``, then ``<figure>_mean/_low/_high/_n`` for
    :data:`SUMMARY_FIGURES` and every metric, then ``energy_<component>_method`` mixes.
    """
    import pandas as pd

    data = _with_cpu(runs)
    data["succeeded"] = data["status"] == "succeeded"
    base = data.groupby("group", sort=True).agg(
        target=("target", "first"),
        model=("model", "first"),
        runs=("run_id", "size"),
        succeeded=("succeeded", "sum"),
    )
    base["success_rate"] = base["succeeded"] / base["runs"]
    ok = data[data["succeeded"]]
    figures = [*SUMMARY_FIGURES, *metric_columns(runs.columns)]
    stats = ok.groupby("group")[figures].agg(["mean", "std", "count"])
    parts: list[pd.DataFrame] = [base]
    for name in figures:
        mean = stats[(name, "mean")].reindex(base.index)
        std = stats[(name, "std")].reindex(base.index)
        count = stats[(name, "count")].reindex(base.index).fillna(0).astype(int)
        t = np.array([t_quantile_975(c - 1) if c >= 2 else math.nan for c in count])
        half = t * std / np.sqrt(count.clip(lower=1))
        # No interval reaches where the figure cannot go (negative energy, accuracy > 1).
        lowest, highest = observed_domain(
            ok[name].to_numpy(dtype=np.float64, na_value=np.nan), name
        )
        parts.append(
            pd.DataFrame(
                {
                    f"{name}_mean": mean,
                    f"{name}_low": (mean - half).clip(lower=lowest),
                    f"{name}_high": (mean + half).clip(upper=highest),
                    f"{name}_n": count,
                }
            )
        )
    methods = {}
    for comp in ("gpu", "cpu_pkg", "cpu_dram", "total"):
        column = f"energy_{comp}_method"
        methods[column] = data.groupby("group")[column].agg(method_mix).reindex(base.index)
    parts.append(pd.DataFrame(methods))
    # copy() consolidates the blocks of many metric columns before the index is inserted.
    summary: pd.DataFrame = pd.concat(parts, axis=1).copy().reset_index()
    return summary


@dataclass
class StudyCost:
    """What the study itself cost, failed and retried attempts included.

    Attributes:
        by_status: Per final run status: ``runs``, ``attempts``, ``retries``,
            ``time_s``, ``energy_j`` (measured attempts), ``attempts_without_energy``.
        by_attempt_status: The same per attempt outcome (a failed attempt that was
            retried into a success counts as failed here).
        total_time_s: Wall time of every attempt, in seconds.
        total_energy_j: Energy of every measured attempt, in joules.
        attempts_without_energy: Attempts whose energy was not measured (not in the total).
        wasted_energy_j: Energy of attempts that did not succeed.
        methods: Mix of the attempts' energy methods.
        carbon_co2e_g: Estimated grams CO₂e of every attempt of the runs that have a
            carbon estimate (None: none has one, or none had energy).
        carbon_runs: Runs with a carbon estimate (the study asked for one).
        carbon_unavailable: Of those, runs whose CO₂e is unavailable (no energy).
        carbon_inputs: The distinct ``intensity x PUE (source)`` used, ``;``-separated.
    """

    by_status: pd.DataFrame
    by_attempt_status: pd.DataFrame
    total_time_s: float
    total_energy_j: float | None
    attempts_without_energy: int
    wasted_energy_j: float | None
    methods: str
    carbon_co2e_g: float | None = None
    carbon_runs: int = 0
    carbon_unavailable: int = 0
    carbon_inputs: str = ""


def sum_or_none(series: pd.Series[Any]) -> float | None:
    """The sum of the values present; None when none is (never a silent 0)."""
    return float(series.sum()) if series.notna().any() else None


def study_cost(runs: pd.DataFrame, attempts: pd.DataFrame) -> StudyCost:
    """Sum time and energy over every attempt of every run, by status."""
    by_status = (
        runs.assign(retries=(runs["attempts"].fillna(0) - 1).clip(lower=0))
        .groupby("status")
        .agg(
            runs=("run_id", "size"),
            attempts=("attempts", "sum"),
            retries=("retries", "sum"),
            time_s=("attempts_duration_s", "sum"),
            energy_j=("attempts_energy_total_j", lambda s: sum_or_none(s)),
            attempts_without_energy=("attempts_energy_missing", "sum"),
        )
        .sort_values("runs", ascending=False)
        .reset_index()
    )
    att = attempts.assign(missing=attempts["energy_total_j"].isna())
    by_attempt = (
        att.groupby("status")
        .agg(
            attempts=("attempt", "size"),
            time_s=("duration_s", "sum"),
            energy_j=("energy_total_j", lambda s: sum_or_none(s)),
            attempts_without_energy=("missing", "sum"),
        )
        .sort_values("attempts", ascending=False)
        .reset_index()
    )
    failed = att[att["status"] != "succeeded"]["energy_total_j"]
    with_carbon = runs[runs["carbon_source"].notna()] if "carbon_source" in runs else runs.iloc[:0]
    inputs = sorted(
        {
            f"{fmt_sig(i)} g/kWh x PUE {fmt_sig(p)} ({src})"
            for i, p, src in zip(
                with_carbon.get("carbon_intensity_g_per_kwh", []),
                with_carbon.get("carbon_pue", []),
                with_carbon.get("carbon_source", []),
                strict=True,
            )
        }
    )
    return StudyCost(
        by_status=by_status,
        by_attempt_status=by_attempt,
        total_time_s=float(att["duration_s"].sum()),
        total_energy_j=sum_or_none(att["energy_total_j"]),
        attempts_without_energy=int(att["missing"].sum()),
        wasted_energy_j=sum_or_none(failed) if len(failed) else 0.0,
        methods=method_mix(att["energy_method"]) if len(att) else "unavailable",
        carbon_co2e_g=sum_or_none(with_carbon["carbon_attempts_co2e_g"])
        if len(with_carbon)
        else None,
        carbon_runs=len(with_carbon),
        carbon_unavailable=int(with_carbon["carbon_co2e_g"].isna().sum())
        if len(with_carbon)
        else 0,
        carbon_inputs="; ".join(inputs),
    )
