"""The report's hyperparameter section: which hyperparameters move energy and metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperjoule.report.analysis._sensitivity import (
    MIN_RUNS,
    RANK_METHOD,
    RATIO_METHOD,
    SRC_METHOD,
    SensitivityResult,
    sensitivity,
    varying_hyperparameters,
)
from hyperjoule.report.analysis._stats import MIN_PAIRS_FOR_INTERVAL
from hyperjoule.report.analysis._summary import method_mix
from hyperjoule.report.load._frame import HP_PREFIX
from hyperjoule.report.render._figure_data import (
    effects_plot,
    sensitivity_plot,
)
from hyperjoule.report.render._html import (
    Column,
    esc,
    figure,
    fmt_ci,
    table,
    warn,
)
from hyperjoule.report.render._report_data import (
    ReportData,
    method_badges,
    raw_cell,
    text_cell,
)
from hyperjoule.report.render._sections_runs import MAX_EFFECT_COLUMNS, label_of

if TYPE_CHECKING:
    pass

__all__ = ["hyperparameter_section"]

MAX_EFFECT_ROWS = 2
"""Outcomes drawn in one group's effect plot: energy and the primary metric (accuracy-like
first); the sensitivity table covers every metric."""


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
    columns: list[Column] = [
        ("hyperparameter", "hyperparameter", text_cell),
        ("scale", "scale", text_cell),
    ]
    for res in results:
        t = res.table.set_index("hyperparameter").reindex(first["hyperparameter"])
        label = label_of(res.outcome)
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
            (f"{label}_rho", f"{label}: rank corr.", raw_cell),
            (f"{label}_src", f"{label}: SRC", raw_cell),
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
        fit = f" Regression R² for {label_of(outcomes[0])}: {r2:.2f}." if r2 is not None else ""
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
        left_out = [label_of(o) for o in outcomes[MAX_EFFECT_ROWS:]]
        caption = (
            f"Outcome against each hyperparameter, {esc(group)}; energy: "
            + method_badges(method_mix(ok["energy_total_method"]))
            + "."
            + (f" {more} less influential hyperparameter(s) not drawn." if more > 0 else "")
            + (f" Not drawn (see the table): {esc(', '.join(left_out))}." if left_out else "")
        )
        parts.append(figure(plot, caption, f"hyperparameter effects for {group}"))
    if skipped:
        parts.append(f"<p class='note'>Not analysed: {esc('; '.join(skipped))}.</p>")
    return "".join(parts)
