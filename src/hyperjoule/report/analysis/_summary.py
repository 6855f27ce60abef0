"""Tables behind the report: per target/model summary, study cost, energy-to-target.

Every function takes the flat run table (``load_runs``) and works on whole columns, so
100,000 runs take well under a second.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.errors import ReportError
from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.analysis._stats import observed_domain, t_quantile_975
from hyperjoule.report.load._frame import HP_PREFIX, METRIC_PREFIX, hp_columns, metric_columns
from hyperjoule.report.load._goals import MetricGoals

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SUMMARY_FIGURES",
    "ReportError",
    "StudyCost",
    "TargetMetric",
    "analysed_metrics",
    "auto_target_metric",
    "energy_to_target",
    "group_labels",
    "group_summary",
    "method_mix",
    "parse_target_metric",
    "study_cost",
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


def _sum_or_none(series: pd.Series[Any]) -> float | None:
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
            energy_j=("attempts_energy_total_j", lambda s: _sum_or_none(s)),
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
            energy_j=("energy_total_j", lambda s: _sum_or_none(s)),
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
        total_energy_j=_sum_or_none(att["energy_total_j"]),
        attempts_without_energy=int(att["missing"].sum()),
        wasted_energy_j=_sum_or_none(failed) if len(failed) else 0.0,
        methods=method_mix(att["energy_method"]) if len(att) else "unavailable",
        carbon_co2e_g=_sum_or_none(with_carbon["carbon_attempts_co2e_g"])
        if len(with_carbon)
        else None,
        carbon_runs=len(with_carbon),
        carbon_unavailable=int(with_carbon["carbon_co2e_g"].isna().sum())
        if len(with_carbon)
        else 0,
        carbon_inputs="; ".join(inputs),
    )


_TARGET_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class TargetMetric:
    """A performance threshold, e.g. ``test_accuracy >= 0.9``.

    Attributes:
        metric: The ``metric_*`` column.
        op: One of ``>=``, ``<=``, ``>``, ``<``.
        threshold: The value to reach.
        how: How it was chosen (``given`` or a sentence on the automatic choice).
        per_group: The threshold is chosen per target/model (metrics of different models
            need not share a scale); ``threshold`` is then only the overall median.
    """

    metric: str
    op: str
    threshold: float
    how: str = "given"
    per_group: bool = False

    def reached(
        self, values: pd.Series[Any], threshold: float | pd.Series[Any] | None = None
    ) -> pd.Series[bool]:
        """Which values reach the threshold (or ``threshold`` per row; missing never do)."""
        limit = self.threshold if threshold is None else threshold
        ops = {
            ">=": values >= limit,
            "<=": values <= limit,
            ">": values > limit,
            "<": values < limit,
        }
        return ops[self.op].fillna(False).astype(bool)

    def __str__(self) -> str:
        name = self.metric.removeprefix(METRIC_PREFIX)
        if self.per_group:
            return f"{name} {self.op} the median of each target/model's succeeded runs"
        threshold = fmt_sig(self.threshold, 4, grouping=False)
        return f"{name} {self.op} {threshold}"


def parse_target_metric(text: str, columns: list[str]) -> TargetMetric:
    """Parse ``test_accuracy>=0.9`` against the run table's columns.

    Raises:
        ReportError: The text is malformed or names no recorded metric.
    """
    match = _TARGET_RE.match(text)
    known = [c.removeprefix(METRIC_PREFIX) for c in metric_columns(columns)]
    if match is None:
        raise ReportError(
            f"--target-metric {text!r}: expected METRIC>=VALUE (or <=, >, <), "
            "e.g. test_accuracy>=0.9"
        )
    name, op, value = match.groups()
    try:
        threshold = float(value)
    except ValueError as e:
        raise ReportError(f"--target-metric {text!r}: {value!r} is not a number") from e
    if name not in known:
        raise ReportError(
            f"--target-metric {text!r}: no metric {name!r} recorded; "
            f"metrics here: {', '.join(known) or 'none'}"
        )
    return TargetMetric(METRIC_PREFIX + name, op, threshold)


def auto_target_metric(runs: pd.DataFrame, goals: MetricGoals | None = None) -> TargetMetric | None:
    """A threshold half of the succeeded runs reach, on the most accuracy-like metric.

    The direction is the metric's goal: declared in ``goals``, else guessed from its name
    (and the choice says so).
    """
    goals = goals or MetricGoals()
    metrics = analysed_metrics(runs)
    if not metrics:
        return None
    ranked = sorted(
        metrics, key=lambda c: ("acc" not in c, not goals.of(c).maximize, metrics.index(c))
    )
    metric = ranked[0]
    ok = runs.loc[runs["status"] == "succeeded", metric].dropna()
    if ok.empty:
        return None
    threshold = float(f"{float(ok.median()):.3g}")
    goal = goals.of(metric)
    op = ">=" if goal.maximize else "<="
    how = (
        f"chosen automatically per target/model: the median "
        f"{metric.removeprefix(METRIC_PREFIX)} of its succeeded runs (about half of them "
        "reach it), since models need not share a metric's scale; set one with "
        "--target-metric"
    )
    if not goal.declared:
        how += f"; goal {goal.label}, declare it in targets.yaml"
    return TargetMetric(metric, op, threshold, how, per_group=True)


def energy_to_target(runs: pd.DataFrame, target: TargetMetric) -> pd.DataFrame:
    """Per target/model: how much energy it takes to reach ``target``.

    Columns: ``group``, ``threshold`` (the target's, or the group's own median when
    ``target.per_group``; None when skipped), ``skipped`` (why the group has no
    threshold, else None), ``runs`` (all), ``measured`` (succeeded with the metric),
    ``reached``, ``reached_share`` (of measured), ``min_energy_j`` and its
    ``min_energy_run_id`` (the cheapest run that reached the target), ``median_energy_j``
    (of the runs that reached it), ``search_energy_j`` (every attempt of every run of the
    group, failures included) and ``search_energy_per_hit_j`` (search energy divided by the
    runs that reached the target: what one success cost when searching like this study).
    """
    import pandas as pd

    data = runs.assign(group=group_labels(runs))
    ok = (data["status"] == "succeeded") & data[target.metric].notna()
    data["measured"] = ok
    thresholds: pd.Series[Any] | None = None
    limit: Any = target.threshold
    if target.per_group:
        medians = data.loc[ok].groupby("group")[target.metric].median()
        thresholds = medians.map(lambda v: float(f"{float(v):.3g}"))
        limit = data["group"].map(thresholds)
    data["reached"] = (
        ok & target.reached(data[target.metric], limit) & data["energy_total_j"].notna()
    )
    out = data.groupby("group").agg(
        runs=("run_id", "size"),
        measured=("measured", "sum"),
        reached=("reached", "sum"),
        search_energy_j=("attempts_energy_total_j", lambda s: _sum_or_none(s)),
    )
    hits = data[data["reached"]]
    cheapest = hits.sort_values("energy_total_j").drop_duplicates("group").set_index("group")
    out["reached_share"] = out["reached"] / out["measured"].where(out["measured"] > 0)
    out["min_energy_j"] = cheapest["energy_total_j"].reindex(out.index)
    out["min_energy_run_id"] = cheapest["run_id"].reindex(out.index)
    out["median_energy_j"] = hits.groupby("group")["energy_total_j"].median().reindex(out.index)
    out["search_energy_per_hit_j"] = out["search_energy_j"] / out["reached"].where(
        out["reached"] > 0
    )
    name = target.metric.removeprefix(METRIC_PREFIX)
    out["threshold"] = (
        thresholds.reindex(out.index) if thresholds is not None else float(target.threshold)
    )
    out["skipped"] = [
        None if measured else f"no succeeded run reports {name}" for measured in out["measured"]
    ]
    out.loc[out["measured"] == 0, "threshold"] = None
    columns = [
        "threshold",
        "skipped",
        "runs",
        "measured",
        "reached",
        "reached_share",
        "min_energy_j",
        "min_energy_run_id",
        "median_energy_j",
        "search_energy_j",
        "search_energy_per_hit_j",
    ]
    result: pd.DataFrame = pd.DataFrame(out[columns]).reset_index()
    return result
