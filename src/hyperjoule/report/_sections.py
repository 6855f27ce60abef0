"""The sections of the HTML report, each built from the flat run table.

Every section is a function ``(ReportData) -> str`` returning escaped HTML. Figures that
show energy say how it was measured; estimated energy is labelled an estimate wherever
it appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.report._frame import HP_PREFIX, METRIC_PREFIX
from hyperjoule.report._goals import MetricGoal, MetricGoals
from hyperjoule.report._html import (
    Column,
    badge,
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
from hyperjoule.report._outliers import FAR_FACTOR, scale_outliers
from hyperjoule.report._pareto import pareto_front
from hyperjoule.report._plots import effects_plot, pareto_plot, sensitivity_plot, summary_plot
from hyperjoule.report._pool import FigurePool
from hyperjoule.report._sensitivity import (
    MIN_RUNS,
    RANK_METHOD,
    RATIO_METHOD,
    SRC_METHOD,
    SensitivityResult,
    sensitivity,
    varying_hyperparameters,
)
from hyperjoule.report._stats import MIN_PAIRS_FOR_INTERVAL
from hyperjoule.report._summary import (
    MAX_ANALYSED_METRICS,
    TargetMetric,
    energy_to_target,
    group_summary,
    metrics_left_out,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ReportData",
    "hyperparameter_section",
    "method_badges",
    "pareto_section",
    "summary_section",
    "target_section",
]

MAX_EFFECT_COLUMNS = 6
"""Most hyperparameters drawn in one group's effect plot (the most influential ones)."""

MAX_EFFECT_ROWS = 2
"""Outcomes drawn in one group's effect plot: energy and the primary metric (accuracy-like
first); the sensitivity table covers every metric."""

PARETO_ROWS = 25
"""Most Pareto-front rows listed per metric."""


@dataclass
class ReportData:
    """What every section reads.

    Attributes:
        runs: The flat run table plus a ``group`` (target/model) column.
        attempts: One row per attempt.
        results_dir: The results directory.
        title: What the report covers (a study name, or every study).
        metrics: The ``metric_*`` columns analysed.
        target: The energy-to-target threshold, None without any metric.
        pool: Where figures are drawn (inline, or worker processes for big reports).
        goals: The metric goals the targets declared (the others are guessed).
    """

    runs: pd.DataFrame
    attempts: pd.DataFrame
    results_dir: Path
    title: str
    metrics: list[str]
    target: TargetMetric | None
    pool: FigurePool = field(default_factory=FigurePool)
    goals: MetricGoals = field(default_factory=MetricGoals)

    def goal(self, metric: str, runs: pd.DataFrame | None = None) -> MetricGoal:
        """The goal of ``metric`` for ``runs`` (one target's) or for the whole report."""
        targets = [] if runs is None else runs["target"].dropna().unique().tolist()
        return self.goals.of(metric, str(targets[0]) if len(targets) == 1 else None)

    def estimated(self, runs: pd.DataFrame | None = None) -> bool:
        """Whether any total energy among ``runs`` (default: all) is an estimate."""
        data = self.runs if runs is None else runs
        return bool((data["energy_total_method"] == "estimated").any())

    def groups(self) -> list[tuple[str, pd.DataFrame]]:
        """(target/model, its runs) in name order."""
        return [(str(g), part) for g, part in self.runs.groupby("group", sort=True)]


def method_badges(mix: Any) -> str:
    """Badges for a method mix string (``counter`` or ``counter 90%, estimated 10%``)."""
    if not isinstance(mix, str) or not mix:
        return badge("unavailable")
    out = []
    for part in mix.split(", "):
        name, _, share = part.partition(" ")
        out.append(badge(name) + (f" <span class='muted'>{esc(share)}</span>" if share else ""))
    return " ".join(out)


def _raw(value: Any) -> str:
    return str(value)


def _text(value: Any) -> str:
    return esc(value)


def _note(value: Any) -> str:
    return "" if value is None or value != value else esc(value)


def run_id_cell(value: Any) -> str:
    """A run id that never wraps (ids are long and break badly)."""
    return f"<span class='id'>{esc(value)}</span>"


def _label(column: str) -> str:
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
        ("group", "target/model", _text),
        ("runs", "runs", _raw),
        ("ok", "succeeded", _raw),
        ("duration", "duration", _raw),
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
        columns.append((figure_name, label, _raw))
    for metric in data.metrics:
        shown[metric] = ci(metric)
        # ↑ higher / ↓ lower is better; "?" when the goal is guessed from the name.
        columns.append((metric, f"{_label(metric)} {data.goal(metric).arrow}", _raw))
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
        method = "total energy: " + method_badges(_mix(ok["energy_total_method"]))
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
                f"{_label(str(metric))} spans a factor of {fmt_num(first['span'])} here: "
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
        ("mode", "mode", _text),
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
        columns.append((m, f"{_label(m)} {arrow}", _raw))
    columns += [(h, _label(h), fmt_value) for h in hps]
    counts = ", ".join(f"{_label(m)}: {int(fronts[m].sum())}" for m in metrics)
    legend = "as declared in targets.yaml"
    if not all(g.declared for g in goals):
        legend += "; ? not declared, guessed from the name"
    return (
        f"<p><b>Pareto front</b> ({len(rows):,} of {len(ok):,} runs on at least one front; "
        f"per metric {esc(counts)}). ● on that metric's front; ↑ higher is better, "
        f"↓ lower is better ({legend}).</p>"
        + table(shown, columns, limit=PARETO_ROWS, css_class="pareto")
    )


def _mix(methods: pd.Series[Any]) -> str:
    from hyperjoule.report._summary import method_mix

    return method_mix(methods)


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
        ("group", "target/model", _text),
        ("threshold", "threshold", fmt_num),
        ("skipped", "skipped because", _note),
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


def _signed(value: Any) -> str:
    return f"{float(value):+.2f}"


def _after_value(cell: str, extra: str) -> str:
    """Put ``extra`` right after a cell's value, before its interval line."""
    if not extra:
        return cell
    head, sep, tail = cell.partition("<span class='ci'>")
    return head + extra + sep + tail


def _sensitivity_table(results: list[SensitivityResult]) -> str:
    import pandas as pd

    first = results[0].table
    shown = pd.DataFrame({"hyperparameter": first["hyperparameter"]})
    shown["scale"] = first["scale"]
    columns: list[Column] = [("hyperparameter", "hyperparameter", _text), ("scale", "scale", _text)]
    for res in results:
        t = res.table.set_index("hyperparameter").reindex(first["hyperparameter"])
        label = _label(res.outcome)
        marks = ["†" if m == RATIO_METHOD else "" for m in t["rank_method"]]
        shown[f"{label}_rho"] = [
            _after_value(fmt_ci(v, lo, hi, _signed), mark)
            for v, lo, hi, mark in zip(
                t["rank_corr"], t["rank_corr_low"], t["rank_corr_high"], marks, strict=True
            )
        ]
        shown[f"{label}_src"] = [
            _after_value(
                fmt_ci(v, lo, hi, _signed),
                f" <span class='muted'>({esc(note)})</span>" if note else "",
            )
            for v, lo, hi, note in zip(
                t["src"], t["src_low"], t["src_high"], t["src_note"], strict=True
            )
        ]
        columns += [
            (f"{label}_rho", f"{label}: rank corr.", _raw),
            (f"{label}_src", f"{label}: SRC", _raw),
        ]
    return table(shown, columns, css_class="sensitivity")


def hyperparameter_section(data: ReportData) -> str:
    """Per target/model: sensitivity ranking with intervals, and effect plots."""
    parts = [
        "<p>For each target and model, over its succeeded runs: how strongly each "
        "hyperparameter moves total energy and each metric. <b>Rank corr.</b>: "
        f"{esc(RANK_METHOD)}; † marks unordered choices with three or more values, where it "
        f"is the {esc(RATIO_METHOD)} (0 to 1, no sign). <b>SRC</b>: {esc(SRC_METHOD)}; "
        "for a choice, the level furthest from the first one. Rows are ranked by the "
        "absolute rank correlation with energy (with the first metric where energy was not "
        "measured); an interval that contains 0 means no clear effect.</p>"
    ]
    skipped: list[str] = []
    for group, runs in data.groups():
        ok = runs[runs["status"] == "succeeded"]
        names = varying_hyperparameters(ok)
        if len(ok) < MIN_RUNS or not names:
            why = f"{len(ok)} succeeded run(s)" if len(ok) < MIN_RUNS else "nothing varied"
            skipped.append(f"{group} ({why})")
            continue
        outcomes = [o for o in ["energy_total_j", *data.metrics] if ok[o].notna().sum() >= MIN_RUNS]
        if not outcomes:
            skipped.append(f"{group} (neither energy nor a metric in {MIN_RUNS} runs)")
            continue
        results = [sensitivity(ok, outcome, names) for outcome in outcomes]
        parts.append(f"<h3>{esc(group)}</h3>")
        notes = sorted({w for r in results for w in r.warnings})
        parts += [warn(w) for w in notes]
        r2 = results[0].r2
        fit = f" Regression R² for {_label(outcomes[0])}: {r2:.2f}." if r2 is not None else ""
        n = results[0].n
        spread = "95% intervals" if n >= MIN_PAIRS_FOR_INTERVAL else "no intervals below 10 runs"
        parts.append(
            figure(
                sensitivity_plot(results, pool=data.pool),
                f"Rank correlation of each hyperparameter with each outcome, {spread} "
                f"(n = {n} runs).{esc(fit)}",
                f"sensitivity ranking for {group}",
            )
        )
        parts.append(_sensitivity_table(results))
        ranked = [HP_PREFIX + h for h in results[0].table["hyperparameter"]]
        shown = ranked[:MAX_EFFECT_COLUMNS]
        estimated = data.estimated(ok)
        drawn = outcomes[:MAX_EFFECT_ROWS]
        plot = effects_plot(ok, shown, drawn, estimated=estimated, pool=data.pool)
        more = len(ranked) - len(shown)
        left_out = [_label(o) for o in outcomes[MAX_EFFECT_ROWS:]]
        caption = (
            f"Outcome against each hyperparameter, {esc(group)}; energy: "
            + method_badges(_mix(ok["energy_total_method"]))
            + "."
            + (f" {more} less influential hyperparameter(s) not drawn." if more > 0 else "")
            + (f" Not drawn (see the table): {esc(', '.join(left_out))}." if left_out else "")
        )
        parts.append(figure(plot, caption, f"hyperparameter effects for {group}"))
    if skipped:
        parts.append(f"<p class='note'>Not analysed: {esc('; '.join(skipped))}.</p>")
    return "".join(parts)
