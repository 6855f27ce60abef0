"""The report sections about runs: summary, Pareto fronts, energy to target, hyperparameters.

Every section is a function ``(ReportData) -> str`` returning escaped HTML. Figures that
show energy say how it was measured; estimated energy is labelled an estimate wherever
it appears.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.report.analysis._outliers import FAR_FACTOR, scale_outliers
from hyperjoule.report.analysis._pareto import pareto_front
from hyperjoule.report.analysis._sensitivity import (
    varying_hyperparameters,
)
from hyperjoule.report.analysis._summary import (
    MAX_ANALYSED_METRICS,
    group_summary,
    method_mix,
    metrics_left_out,
)
from hyperjoule.report.analysis._target import TargetMetric, energy_to_target
from hyperjoule.report.load._frame import HP_PREFIX, METRIC_PREFIX
from hyperjoule.report.load._goals import MetricGoal
from hyperjoule.report.render._figure_data import (
    pareto_plot,
    summary_plot,
)
from hyperjoule.report.render._html import (
    Column,
    esc,
    figure,
    fmt_ci,
    fmt_duration,
    fmt_energy,
    fmt_num,
    fmt_pct,
    fmt_value,
    table,
    warn,
)
from hyperjoule.report.render._report_data import (
    ReportData,
    method_badges,
    note_cell,
    raw_cell,
    run_id_cell,
    text_cell,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "pareto_section",
    "summary_section",
    "target_section",
]

MAX_EFFECT_COLUMNS = 6
"""Most hyperparameters drawn in one group's effect plot or front table (the most
influential ones)."""

PARETO_ROWS = 25
"""Most Pareto-front rows listed per metric."""


def label_of(column: str) -> str:
    """How a figure column is named in the report."""
    if column == "energy_total_j":
        return "energy"
    return column.removeprefix(METRIC_PREFIX).removeprefix(HP_PREFIX)


def summary_section(data: ReportData) -> str:
    """Per target/model: runs, success rate, duration, energy by component, metrics."""
    import pandas as pd

    summary = group_summary(data.runs)
    shown = pd.DataFrame({"group": summary["group"]})
    shown["runs"] = summary["runs"].map(fmt_num)
    shown["ok"] = summary["success_rate"].map(fmt_pct)

    def ci(name: str, fmt: Any = fmt_num) -> list[str]:
        return [
            fmt_ci(m, lo, hi, fmt)
            for m, lo, hi in zip(
                summary[f"{name}_mean"],
                summary[f"{name}_low"],
                summary[f"{name}_high"],
                strict=True,
            )
        ]

    shown["duration"] = ci("duration_s", fmt_duration)
    columns: list[Column] = [
        ("group", "target/model", text_cell),
        ("runs", "runs", raw_cell),
        ("ok", "succeeded", raw_cell),
        ("duration", "duration", raw_cell),
    ]
    for figure_name, label, method_col in (
        ("energy_gpu_j", "GPU energy", "energy_gpu_method"),
        ("energy_cpu_j", "CPU energy (pkg+DRAM)", "energy_cpu_pkg_method"),
        ("energy_total_j", "total energy", "energy_total_method"),
    ):
        shown[figure_name] = [
            f"{value}<div>{method_badges(mix)}</div>"
            for value, mix in zip(ci(figure_name, fmt_energy), summary[method_col], strict=True)
        ]
        columns.append((figure_name, label, raw_cell))
    for metric in data.metrics:
        shown[metric] = ci(metric)
        # ↑ higher / ↓ lower is better; "?" when the goal is guessed from the name.
        columns.append((metric, f"{label_of(metric)} {data.goal(metric).arrow}", raw_cell))
    guess_note = ""
    if any(not data.goal(m).declared for m in data.metrics):
        guess_note = ", ? not declared in targets.yaml, guessed from the name"
    parts = [
        "<p>Means over the succeeded runs of each target and model, with 95% t intervals "
        "in brackets (none below two runs, never beyond what the figure can take). Under "
        "each energy figure: how it was measured. Metrics: ↑ higher is better, ↓ lower is "
        f"better{guess_note}.</p>",
        table(shown, columns),
    ]
    if summary["energy_total_j_n"].sum() > 0:
        estimated = data.estimated()
        plot = summary_plot(summary, estimated=estimated, pool=data.pool)
        caption = "Mean total energy per succeeded run. " + (
            "<b>Energy here is estimated, not measured</b> (see Methods)." if estimated else ""
        )
        parts.append(figure(plot, caption, "mean total energy per target and model"))
    return "".join(parts)


def pareto_section(data: ReportData) -> str:
    """Energy against every metric per target/model, Pareto front marked and listed."""
    if not data.metrics:
        return "<p>No performance metric was recorded, so there is no trade-off to show.</p>"
    parts = [
        "<p>Each point is a succeeded run. A run is on the <b>Pareto front</b> (red) when "
        "no other run of the same target and model used less or equal energy and performed "
        "at least as well, being strictly better in one. The tables list the front, "
        "cheapest first: these configurations are not dominated.</p>"
    ]
    left_out = metrics_left_out(data.runs, data.metrics)
    if left_out:
        parts.append(
            f"<p>{left_out} more recorded metric(s) are not analysed: the report takes at "
            f"most {MAX_ANALYSED_METRICS} (accuracy-like first); the export has them all.</p>"
        )
    skipped: list[str] = []
    outliers = scale_outliers(data.runs, data.metrics)
    for group, runs in data.groups():
        ok = runs[(runs["status"] == "succeeded") & runs["energy_total_j"].notna()]
        metrics = [m for m in data.metrics if ok[m].notna().sum() >= 1]
        if len(ok) < 2 or not metrics:
            skipped.append(f"{group} ({len(ok)} succeeded run(s) with energy)")
            continue
        estimated = data.estimated(ok)
        parts.append(f"<h3>{esc(group)}</h3>")
        flagged = outliers[outliers["group"] == group]
        parts += _outlier_notes(flagged)
        goals = [data.goal(m, ok) for m in metrics]
        plot = pareto_plot(ok, metrics, estimated=estimated, goals=goals, pool=data.pool)
        method = "total energy: " + method_badges(method_mix(ok["energy_total_method"]))
        parts.append(
            figure(
                plot,
                f"Energy against each metric, {esc(group)}; {method}.",
                f"energy against performance for {group}",
            )
        )
        marked = set(zip(flagged["run_id"], flagged["metric"], strict=True))
        parts.append(_front_table(ok, metrics, goals, marked))
    if skipped:
        parts.append(f"<p class='note'>Not enough runs to compare: {esc('; '.join(skipped))}.</p>")
    return "".join(parts)


def _outlier_notes(flagged: pd.DataFrame) -> list[str]:
    """One warning per metric whose values of this target/model mix scales."""
    notes = []
    for metric, rows in flagged.groupby("metric", sort=False):
        first = rows.iloc[0]
        examples = ", ".join(
            f"{fmt_num(v)} ({r})"
            for v, r in zip(rows["value"][:5], rows["run_id"][:5], strict=True)
        )
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        notes.append(
            warn(
                f"{label_of(str(metric))} spans a factor of {fmt_num(first['span'])} here: "
                f"{len(rows)} value(s) more than {FAR_FACTOR:g}× from the median "
                f"{fmt_num(first['median'])} are flagged ⚠ ({examples}{more}). They are "
                "likely on another scale (a fraction next to a percentage, a logging bug); "
                "check them before reading the front."
            )
        )
    return notes


def _front_table(
    ok: pd.DataFrame,
    metrics: list[str],
    goals: list[MetricGoal],
    flagged: set[tuple[str, str]] | None = None,
) -> str:
    """One table of the runs on any metric's front; ● marks the fronts each run is on."""
    import pandas as pd

    fronts = {
        m: pareto_front(ok["energy_total_j"], ok[m], maximize=g.maximize)
        for m, g in zip(metrics, goals, strict=True)
    }
    on_any = np.logical_or.reduce(list(fronts.values()))
    rows = ok[on_any].sort_values("energy_total_j", kind="stable")
    hps = [h for h in varying_hyperparameters(ok)[:MAX_EFFECT_COLUMNS] if h in rows.columns]
    shown = rows[["run_id", "mode", "energy_total_j", *hps]].copy()
    columns: list[Column] = [
        ("run_id", "run", run_id_cell),
        ("mode", "mode", text_cell),
        ("energy_total_j", "total energy", fmt_energy),
    ]
    for m in metrics:
        on_front = pd.Series(fronts[m], index=ok.index).loc[rows.index]
        marks = ["" if (r, m) not in (flagged or set()) else " ⚠" for r in rows["run_id"]]
        shown[m] = [
            (f"<span class='front'>●</span> {fmt_num(v)}" if front else esc(fmt_num(v))) + mark
            for v, front, mark in zip(rows[m], on_front, marks, strict=True)
        ]
        arrow = goals[metrics.index(m)].arrow
        columns.append((m, f"{label_of(m)} {arrow}", raw_cell))
    columns += [(h, label_of(h), fmt_value) for h in hps]
    counts = ", ".join(f"{label_of(m)}: {int(fronts[m].sum())}" for m in metrics)
    legend = "as declared in targets.yaml"
    if not all(g.declared for g in goals):
        legend += "; ? not declared, guessed from the name"
    return (
        f"<p><b>Pareto front</b> ({len(rows):,} of {len(ok):,} runs on at least one front; "
        f"per metric {esc(counts)}). ● on that metric's front; ↑ higher is better, "
        f"↓ lower is better ({legend}).</p>"
        + table(shown, columns, limit=PARETO_ROWS, css_class="pareto")
    )


def _target_text(target: TargetMetric, result: pd.DataFrame) -> str:
    """The target as text; per target/model thresholds listed (one when they agree)."""
    if not target.per_group:
        return str(target)
    name = target.metric.removeprefix(METRIC_PREFIX)
    chosen = result.dropna(subset=["threshold"])
    values = sorted(set(chosen["threshold"]))
    if len(values) == 1:
        return f"{name} {target.op} {fmt_num(values[0])}"
    each = ", ".join(
        f"{g} {fmt_num(t)}" for g, t in zip(chosen["group"], chosen["threshold"], strict=True)
    )
    return f"{name} {target.op} per target/model: {each}"


def target_section(data: ReportData) -> str:
    """Energy needed to reach a metric threshold, per target/model."""
    if data.target is None:
        return "<p>No performance metric was recorded, so there is no target to reach.</p>"
    target = data.target
    result = energy_to_target(data.runs, target)
    how = "" if target.how == "given" else f" ({esc(target.how)})"
    columns: list[Column] = [
        ("group", "target/model", text_cell),
        ("threshold", "threshold", fmt_num),
        ("skipped", "skipped because", note_cell),
        ("runs", "runs", fmt_num),
        ("measured", "succeeded with metric", fmt_num),
        ("reached", "reached target", fmt_num),
        ("reached_share", "share", fmt_pct),
        ("min_energy_j", "least energy to reach", fmt_energy),
        ("min_energy_run_id", "by run", run_id_cell),
        ("median_energy_j", "median energy of hits", fmt_energy),
        ("search_energy_j", "search energy (all attempts)", fmt_energy),
        ("search_energy_per_hit_j", "search energy per hit", fmt_energy),
    ]
    estimated = " Energy figures here are estimates." if data.estimated() else ""
    return (
        f"<p>Target: <code>{esc(_target_text(target, result))}</code>{how}.</p>"
        "<p><i>Least energy to reach</i> is the cheapest single run that met the target; "
        "<i>search energy per hit</i> divides everything the study spent on that target and "
        "model (failed and retried attempts included) by the runs that met it: what one "
        f"success cost when searching as this study did.{estimated}</p>" + table(result, columns)
    )
