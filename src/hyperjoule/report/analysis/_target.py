"""Energy to a performance target: the cheapest way each target/model reached a threshold.

A threshold is given (``test_accuracy >= 0.9``) or chosen per target/model from its
recorded metrics (:func:`auto_target_metric`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperjoule.errors import ReportError
from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.analysis._summary import analysed_metrics, group_labels, sum_or_none
from hyperjoule.report.load._frame import METRIC_PREFIX, metric_columns
from hyperjoule.report.load._goals import MetricGoals

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TargetMetric", "auto_target_metric", "energy_to_target", "parse_target_metric"]


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
        search_energy_j=("attempts_energy_total_j", lambda s: sum_or_none(s)),
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
