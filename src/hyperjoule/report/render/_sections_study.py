"""Report sections about the study as a whole: header, parallel runs, cost, timeline, methods."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from hyperjoule.records import ENERGY_COMPONENTS
from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.analysis._parallel import parallel_vs_isolated
from hyperjoule.report.analysis._summary import StudyCost, method_mix, study_cost
from hyperjoule.report.load._goals import LOWER_IS_BETTER_WORDS
from hyperjoule.report.render._figure_data import parallel_plot, timeline_plot
from hyperjoule.report.render._html import (
    Column,
    badge,
    esc,
    figure,
    fmt_ci,
    fmt_duration,
    fmt_energy,
    fmt_num,
    table,
    warn,
)
from hyperjoule.report.render._report_data import (
    ReportData,
    method_badges,
    raw_cell,
    run_id_cell,
    text_cell,
)

if TYPE_CHECKING:
    import pandas as pd

    from hyperjoule.report.load._timeline import Timeline

__all__ = [
    "cost_section",
    "header",
    "methods_section",
    "parallel_section",
    "timeline_section",
]

_COMPONENT_LABELS = {"gpu": "GPU", "cpu_pkg": "CPU package", "cpu_dram": "DRAM", "total": "total"}


def _card(value: str, label: str) -> str:
    return f"<div class='card'><b>{esc(value)}</b><span>{esc(label)}</span></div>"


def header(data: ReportData, version: str) -> str:
    """Title, what the report covers, key figures, and a banner when energy is estimated."""
    runs = data.runs
    cost = study_cost(runs, data.attempts)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = runs["started_at"].min()
    ended = runs["ended_at"].max()
    span = ""
    if started == started and ended == ended:  # both present (NaT != NaT)
        span = f"; runs from {started:%Y-%m-%d %H:%M} to {ended:%Y-%m-%d %H:%M} UTC"
    ok = int((runs["status"] == "succeeded").sum())
    parts = [
        f"<h1>hyperjoule report: {esc(data.title)}</h1>",
        f"<p class='muted'>{len(runs):,} runs in {runs['session'].nunique():,} session(s), "
        f"{runs['group'].nunique():,} target/model pair(s){esc(span)}. Results: "
        f"<code>{esc(data.results_dir)}</code>. Written {esc(now)} by hyperjoule "
        f"{esc(version)}.</p>",
        "<div class='cards'>",
        _card(f"{len(runs):,}", "runs"),
        _card(f"{ok / len(runs):.0%}", "succeeded"),
        _card(fmt_energy(cost.total_energy_j), "study energy, all attempts"),
        _card(fmt_duration(cost.total_time_s), "study run time, all attempts"),
        "</div>",
    ]
    methods = runs["energy_total_method"]
    if (methods == "estimated").any():
        share = float((methods == "estimated").mean())
        reasons = runs.loc[runs["energy_cpu_pkg_method"] == "estimated", "energy_cpu_pkg_reason"]
        why = f" (for example: {reasons.mode().iloc[0]})" if reasons.notna().any() else ""
        parts.append(
            warn(
                f"{share:.0%} of the runs' energy totals include ESTIMATED figures{why}. "
                "Estimates are models, not measurements; they are marked 'estimate' in every "
                "table and figure."
            )
        )
    if (methods == "unavailable").any():
        count = int((methods == "unavailable").sum())
        parts.append(
            warn(
                f"{count:,} run(s) have no energy measurement at all (left out of "
                "energy figures, never counted as zero)."
            )
        )
    return "".join(parts)


def parallel_section(data: ReportData) -> str:
    """Parallel-mode runs against isolated ones of the same target/model."""
    comparison = parallel_vs_isolated(data.runs)
    if comparison is None:
        is_parallel = data.runs["mode"] == "parallel"
        if not is_parallel.any():
            what = "these records have no parallel-mode runs"
        elif is_parallel.all():
            what = "these records have no isolated runs to compare them with"
        else:
            what = "no target/model has succeeded runs with energy both in parallel and isolated"
        return f"<p>Nothing to compare: {esc(what)}.</p>"
    parallel = data.runs[data.runs["mode"] == "parallel"]
    effective = parallel["background_effective"]
    parts = [
        "<p>Parallel-mode runs trained while a background job loaded the machine; their "
        "energy is <b>combined</b> (foreground and background share the meters), so a "
        "ratio above 1 includes the background's own consumption.</p>"
    ]
    if effective.notna().any() and not effective.fillna(True).all():
        parts.append(
            warn(
                f"{int((~effective.fillna(True)).sum())} parallel run(s) had a "
                "background that did not really load the machine "
                "(effective: false)."
            )
        )
    columns: list[Column] = [
        ("group", "target/model", text_cell),
        ("isolated_n", "isolated runs", fmt_num),
        ("isolated", "isolated energy", raw_cell),
        ("parallel_n", "parallel runs", fmt_num),
        ("parallel", "parallel energy", raw_cell),
        ("energy_ratio", "ratio", fmt_num),
    ]
    by_group = comparison.by_group.copy()
    for kind in ("isolated", "parallel"):
        col = f"{kind}_energy_j"
        by_group[kind] = [
            fmt_ci(v, lo, hi, fmt_energy)
            for v, lo, hi in zip(
                by_group[col], by_group[f"{col}_low"], by_group[f"{col}_high"], strict=True
            )
        ]
    parts.append(table(by_group, columns, caption="Means over different configurations"))
    matched = comparison.matched
    if matched.empty:
        parts.append(
            "<p class='note'>No configuration ran both ways, so the comparison "
            "above mixes the load's effect with that of the hyperparameters.</p>"
        )
    else:
        median, low, high = comparison.median_ratio
        parts.append(
            f"<p>{len(matched):,} configuration(s) ran both ways; median energy ratio "
            f"(parallel / isolated): {fmt_ci(median, low, high)} (bootstrap 95% interval).</p>"
        )
        parts.append(
            table(
                matched,
                [
                    ("group", "target/model", text_cell),
                    ("isolated_run_id", "isolated run", run_id_cell),
                    ("parallel_run_id", "parallel run", run_id_cell),
                    ("isolated_n", "isolated runs", fmt_num),
                    ("parallel_n", "parallel runs", fmt_num),
                    ("isolated_energy_j", "isolated energy", fmt_energy),
                    ("parallel_energy_j", "parallel energy", fmt_energy),
                    ("energy_ratio", "energy ratio", fmt_num),
                    ("duration_ratio", "duration ratio", fmt_num),
                ],
                limit=30,
            )
        )
    estimated = data.estimated()
    method = method_badges(method_mix(data.runs["energy_total_method"]))
    parts.append(
        figure(
            parallel_plot(comparison, estimated=estimated, pool=data.pool),
            f"Energy of parallel against isolated runs; {method}.",
            "parallel against isolated energy",
        )
    )
    return "".join(parts)


def _carbon_paragraph(cost: StudyCost, runs: int) -> str:
    """The study's estimated CO₂e, labelled an estimate, with its inputs."""
    grams = "unavailable (no run had an energy figure)"
    if cost.carbon_co2e_g is not None:
        grams = f"{fmt_sig(cost.carbon_co2e_g)} g CO₂e"
    missing = (
        f"; {cost.carbon_unavailable:,} run(s) without energy have no figure"
        if cost.carbon_unavailable
        else ""
    )
    return (
        f"<p>Estimated carbon of every attempt of the {cost.carbon_runs:,} of {runs:,} run(s) "
        f"with a carbon setting: <b>{esc(grams)}</b>{esc(missing)} — an <i>estimate</i>: "
        f"energy × PUE × grid intensity, {esc(cost.carbon_inputs)}; an annual average "
        "intensity, not the grid's mix at the hour of the run.</p>"
    )


def cost_section(data: ReportData) -> str:
    """Total energy and time of the study, failed and retried attempts included."""
    cost = study_cost(data.runs, data.attempts)
    wasted = fmt_energy(cost.wasted_energy_j)
    parts = [
        f"<p>Every attempt of every run, retries and failures included: "
        f"<b>{esc(fmt_energy(cost.total_energy_j))}</b> over "
        f"<b>{esc(fmt_duration(cost.total_time_s))}</b> of run time; attempts that did not "
        f"succeed used {esc(wasted)}. Methods: {method_badges(cost.methods)}.</p>"
    ]
    if cost.carbon_runs:
        parts.append(_carbon_paragraph(cost, len(data.runs)))
    unlogged = int(data.runs["attempts"].fillna(0).sum()) - len(data.attempts)
    if unlogged > 0:
        parts.append(
            warn(
                f"{unlogged:,} attempt(s) counted by their runs left no entry in the attempt "
                "log (imported runs keep only their final attempt; the old tool did not "
                "record the others): their time and energy are not in these totals."
            )
        )
    if cost.attempts_without_energy:
        parts.append(
            warn(
                f"{cost.attempts_without_energy:,} attempt(s) have no energy "
                "measurement; they are not in the energy totals."
            )
        )
    columns: list[Column] = [
        ("status", "final status", text_cell),
        ("runs", "runs", fmt_num),
        ("attempts", "attempts", fmt_num),
        ("retries", "retries", fmt_num),
        ("time_s", "run time", fmt_duration),
        ("energy_j", "energy", fmt_energy),
        ("attempts_without_energy", "attempts without energy", fmt_num),
    ]
    parts.append("<p><b>By the run's final status</b></p>" + table(cost.by_status, columns))
    attempt_columns: list[Column] = [
        ("status", "attempt outcome", text_cell),
        *[
            c
            for c in columns
            if c[0] in ("attempts", "time_s", "energy_j", "attempts_without_energy")
        ],
    ]
    parts.append(
        "<p><b>By each attempt's outcome</b> (a failed attempt later retried into a "
        "success counts as failed here)</p>" + table(cost.by_attempt_status, attempt_columns)
    )
    return "".join(parts)


def timeline_section(timeline: Timeline | None, data: ReportData) -> str:
    """Power, temperature and utilisation of one run over time."""
    if timeline is None:
        return (
            "<p>No timeline recorded: no run in this report has a GPU timeline "
            "(<code>energy/gpu.csv</code>, written when a GPU is measured).</p>"
        )
    row = data.runs[data.runs["run_id"] == timeline.run_id]
    what = ""
    if not row.empty:
        r = row.iloc[0]
        what = (
            f" ({esc(r['group'])}, {esc(r['mode'])}, {esc(r['status'])}, "
            f"{esc(fmt_duration(r['duration_s']))}, GPU energy {esc(fmt_energy(r['energy_gpu_j']))}"
            f" {badge(str(r['energy_gpu_method']))})"
        )
    caption = (
        f"GPU power, temperature and utilisation of run <code>{esc(timeline.run_id)}</code>"
        f"{what}, sampled by the GPU meter; from <code>{esc(timeline.path)}</code>."
    )
    return figure(
        timeline_plot(timeline, pool=data.pool), caption, f"GPU timeline of run {timeline.run_id}"
    )


def _goals_text(data: ReportData) -> str:
    """Which metrics are minimised or maximised, and which of those goals were guessed."""
    if not data.metrics:
        return "No performance metric was recorded."
    goals = [data.goal(m) for m in data.metrics]
    listed = ", ".join(f"{g.metric}: {g.label}" for g in goals)
    text = f"Metric goals (declared in targets.yaml unless marked guessed): {listed}."
    if any(not g.declared for g in goals):
        words = ", ".join(LOWER_IS_BETTER_WORDS)
        text += (
            " An undeclared metric is guessed lower-is-better when its name holds one of "
            f"the words {words}, else higher-is-better; declare 'goal: minimize' or "
            "'goal: maximize' under the target's metrics to be sure."
        )
    return text


def _notes_by_method(runs: pd.DataFrame, comp: str) -> str:
    """The most common note of each method used, each naming its own runs' method.

    Imported GPU figures say "nvidia-smi power summed once a second (legacy)".
    """
    notes = []
    methods = runs[f"energy_{comp}_method"].fillna("unavailable")
    for method in methods.value_counts().index:
        reasons = runs.loc[methods == method, f"energy_{comp}_reason"].dropna()
        if not reasons.empty:
            notes.append(f"{method}: {reasons.mode().iloc[0]}")
    return "; ".join(notes)


def methods_section(data: ReportData) -> str:
    """How each figure was obtained: measurement methods and the statistics used."""
    runs = data.runs
    rows = []
    for comp in (*ENERGY_COMPONENTS, "total"):
        mix = method_mix(runs[f"energy_{comp}_method"])
        reason = "" if comp == "total" else _notes_by_method(runs, comp)
        rows.append(
            f"<tr><td>{esc(_COMPONENT_LABELS[comp])}</td><td class='text'>"
            f"{method_badges(mix)}</td><td class='text'>{esc(reason)}</td></tr>"
        )
    return (
        "<h3>Measurement</h3><p>Every energy figure carries how it was obtained: "
        f"{badge('counter')} a hardware energy counter read at the run's start and end; "
        f"{badge('integrated')} power samples integrated over time; {badge('estimated')} a "
        f"model (e.g. CPU time times a power per core), not a measurement; "
        f"{badge('unavailable')} not measured (left out, never counted as zero). A total is "
        "only as good as its weakest component.</p>"
        "<table><thead><tr><th>component</th><th class='text'>method (share of runs)</th>"
        "<th class='text'>how (most common note per method)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        "<h3>Statistics</h3><ul>"
        "<li>Intervals are 95%: t intervals for means (clipped to what the figure can take: "
        "0 and up when every value is, at most 1 for a fraction such as accuracy); "
        "Fisher-z intervals for Spearman's rank "
        "correlation (standard error √(1.06/(n−3)); none below 10 runs, where the "
        "approximation is too rough); percentile bootstrap (200 resamples, "
        "fixed seed) for correlation ratios and median ratios; t intervals from the OLS "
        "standard errors for standardised regression coefficients (SRC).</li>"
        "<li>Sensitivity uses succeeded runs only; hyperparameters spanning a factor of 20 or "
        "more are on a log10 scale in the regression and the plots. Below "
        "20 runs a group carries a warning; below 4 it is not analysed.</li>"
        f"<li>{esc(_goals_text(data))} Metrics named like a hyperparameter (a script "
        "echoing its settings) are not analysed.</li>"
        "<li>Scatter plots of large studies show a fixed random sample of the runs; every "
        "statistic and table uses all of them.</li></ul>"
    )
