"""The report's figures: data taken from the run table, drawn by :mod:`._figure_draw`.

Each function here picks what to draw (sampling large studies at random with a fixed
seed; every Pareto-front run is always drawn), hands the arrays to a :class:`FigurePool`
and returns a :class:`Plot` with the caption notes (what was sampled, what the lines are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.report._pool import FigurePool
from hyperjoule.report.analysis._pareto import pareto_front
from hyperjoule.report.analysis._sensitivity import is_log_scale
from hyperjoule.report.analysis._stats import FloatArray
from hyperjoule.report.load._frame import HP_PREFIX, METRIC_PREFIX
from hyperjoule.report.load._goals import MetricGoal, MetricGoals
from hyperjoule.report.render._figure_draw import (
    EffectColumn,
    EffectRow,
    ParetoPanel,
    draw_effects,
    draw_hypervolume,
    draw_parallel,
    draw_pareto,
    draw_sensitivity,
    draw_summary,
    draw_timeline,
    energy_axis,
)

if TYPE_CHECKING:
    import pandas as pd

    from hyperjoule.report.analysis._parallel import ParallelComparison
    from hyperjoule.report.analysis._sensitivity import SensitivityResult
    from hyperjoule.report.load._timeline import Timeline

__all__ = [
    "MAX_EFFECT_POINTS",
    "MAX_POINTS",
    "Plot",
    "effects_plot",
    "hypervolume_plot",
    "energy_scale",
    "parallel_plot",
    "pareto_plot",
    "sensitivity_plot",
    "summary_plot",
    "timeline_plot",
]

MAX_POINTS = 3000
"""Most runs drawn per Pareto panel; larger studies are drawn from a random sample."""

MAX_EFFECT_POINTS = 1000
"""Most runs drawn in a group's hyperparameter-effect panels."""

MAX_TIMELINE_POINTS = 5000
"""Most samples drawn per GPU in a timeline."""

_INLINE = FigurePool(0)


@dataclass
class Plot:
    """One figure: a ``data:image/png`` URI (or a pool placeholder) and caption notes."""

    data_uri: str
    notes: list[str] = field(default_factory=list)


def energy_scale(values: FloatArray) -> tuple[float, str]:
    """A divisor and unit that keep energy axes readable (J, kJ, MJ, GJ)."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    for factor, unit in ((1e9, "GJ"), (1e6, "MJ"), (1e3, "kJ")):
        if top >= 10 * factor:
            return factor, unit
    return 1.0, "J"


def _sample(n: int, limit: int, seed: int = 0) -> Any:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _sample_note(shown: int, total: int) -> list[str]:
    if shown >= total:
        return []
    return [f"scatter shows a random sample of {shown:,} of {total:,} runs"]


def _floats(series: pd.Series[Any]) -> FloatArray:
    return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


def pareto_plot(
    runs: pd.DataFrame,
    metrics: list[str],
    *,
    estimated: bool,
    goals: Sequence[MetricGoal] | None = None,
    pool: FigurePool = _INLINE,
) -> Plot:
    """Energy against each metric for succeeded runs, the Pareto front in red.

    ``goals`` gives each metric's goal (declared or guessed); None: guessed from names.
    """
    ok = runs[(runs["status"] == "succeeded") & runs["energy_total_j"].notna()]
    energy = _floats(ok["energy_total_j"])
    factor, unit = energy_scale(energy)
    panels: list[ParetoPanel] = []
    notes: list[str] = []
    for k, metric in enumerate(metrics):
        values = _floats(ok[metric])
        goal = goals[k] if goals is not None else MetricGoals().of(metric)
        maximize = goal.maximize
        front = pareto_front(energy, values, maximize=maximize)
        keep = np.flatnonzero(np.isfinite(values))
        idx = keep[_sample(keep.size, MAX_POINTS)]
        order = np.argsort(energy[front], kind="stable")
        name = metric.removeprefix(METRIC_PREFIX)
        panels.append(
            ParetoPanel(
                title=f"{name} ({'higher' if maximize else 'lower'} is better"
                + ("" if goal.declared else ", guessed")
                + ")",
                metric=name,
                energy=energy[idx] / factor,
                values=values[idx],
                front_energy=energy[front][order] / factor,
                front_values=values[front][order],
            )
        )
        notes = notes or _sample_note(idx.size, keep.size)
    size = 10.0 if len(ok) > 300 else 24.0
    uri = pool.submit(draw_pareto, panels=panels, estimated=estimated, unit=unit, size=size)
    return Plot(uri, notes)


def effects_plot(
    runs: pd.DataFrame,
    hyperparameters: list[str],
    outcomes: list[str],
    *,
    estimated: bool,
    pool: FigurePool = _INLINE,
) -> Plot:
    """Each outcome (rows) against each hyperparameter (columns), median line in red."""
    idx = _sample(len(runs), MAX_EFFECT_POINTS, seed=1)
    data = runs.iloc[idx]
    columns: list[EffectColumn] = []
    for hp in hyperparameters:
        series = data[hp]
        name = hp.removeprefix(HP_PREFIX)
        if series.dtype.kind in "biuf" or str(series.dtype) in ("Int64", "boolean"):
            values = _floats(series)
            columns.append(EffectColumn(name, values, log=is_log_scale(values)))
        else:
            codes, levels = series.factorize(sort=True)
            values = codes.astype(np.float64)
            values[codes < 0] = np.nan
            columns.append(EffectColumn(name, values, levels=tuple(str(v) for v in levels)))
    rows: list[EffectRow] = []
    for outcome in outcomes:
        y = _floats(data[outcome])
        if outcome.startswith("energy_"):
            factor, unit = energy_scale(y)
            rows.append(EffectRow(energy_axis("energy", estimated, unit), y / factor, True))
        else:
            rows.append(EffectRow(outcome.removeprefix(METRIC_PREFIX), y, False))
    size = 6.0 if len(data) > 300 else 24.0
    uri = pool.submit(draw_effects, columns=columns, rows=rows, estimated=estimated, size=size)
    notes = [
        "red: median per value (per decile of the values when they are many; drawn only "
        "with enough runs)"
    ]
    return Plot(uri, notes + _sample_note(len(idx), len(runs)))


def sensitivity_plot(results: list[SensitivityResult], *, pool: FigurePool = _INLINE) -> Plot:
    """Rank correlation of each hyperparameter with each outcome, with 95 % intervals."""
    names: list[str] = []
    for res in results:
        names += [h for h in res.table["hyperparameter"] if h not in names]
    series = []
    for res in results:
        t = res.table.set_index("hyperparameter").reindex(names)
        label = "energy" if res.outcome == "energy_total_j" else res.outcome
        series.append(
            (
                label.removeprefix(METRIC_PREFIX),
                _floats(t["rank_corr"]),
                _floats(t["rank_corr_low"]),
                _floats(t["rank_corr_high"]),
            )
        )
    return Plot(pool.submit(draw_sensitivity, names=names, series=series), [])


def summary_plot(summary: pd.DataFrame, *, estimated: bool, pool: FigurePool = _INLINE) -> Plot:
    """Mean total energy per target/model with its 95 % interval."""
    mean = _floats(summary["energy_total_j_mean"])
    factor, unit = energy_scale(mean)
    uri = pool.submit(
        draw_summary,
        groups=[str(g) for g in summary["group"]],
        mean=mean / factor,
        low=_floats(summary["energy_total_j_low"]) / factor,
        high=_floats(summary["energy_total_j_high"]) / factor,
        estimated=estimated,
        unit=unit,
    )
    return Plot(uri, ["bars: mean; whiskers: 95% t interval (none below two runs)"])


def hypervolume_plot(curves: dict[str, list[float]], *, pool: FigurePool = _INLINE) -> Plot:
    """A search's hypervolume over trials, random mutation of the same target beside it."""
    uri = pool.submit(draw_hypervolume, curves={k: list(v) for k, v in curves.items()})
    return Plot(uri, ["steps: the hypervolume after each trial (run), oldest first"])


def parallel_plot(
    comparison: ParallelComparison, *, estimated: bool, pool: FigurePool = _INLINE
) -> Plot:
    """Paired configurations (isolated vs parallel energy), else per-group means."""
    if not comparison.matched.empty:
        source = comparison.matched
        note = "each point: one configuration run both ways (means)"
    else:
        source = comparison.by_group
        note = "each point: one target/model (means over different configurations)"
    iso = _floats(source["isolated_energy_j"])
    par = _floats(source["parallel_energy_j"])
    factor, unit = energy_scale(np.concatenate([iso, par]))
    uri = pool.submit(
        draw_parallel, iso=iso / factor, par=par / factor, estimated=estimated, unit=unit
    )
    return Plot(uri, [note])


def timeline_plot(timeline: Timeline, *, pool: FigurePool = _INLINE) -> Plot:
    """Power, temperature and utilisation over the run, one line per GPU."""
    samples = timeline.samples
    available = [
        (column, label)
        for column, label in (
            ("power_w", "power (W)"),
            ("temp_c", "temperature (°C)"),
            ("util_pct", "utilisation (%)"),
        )
        if column in samples.columns
    ]
    notes: list[str] = []
    lines = []
    for gpu, part in samples.groupby("gpu", sort=True):
        step = max(1, -(-len(part) // MAX_TIMELINE_POINTS))
        if step > 1:
            notes = [f"every {step}th sample drawn ({len(part):,} samples per GPU)"]
        part = part.iloc[::step]
        values = [_floats(part[column]) for column, _label in available]
        lines.append((f"GPU {gpu}", _floats(part["time_s"]), values))
    uri = pool.submit(
        draw_timeline,
        run_id=timeline.run_id,
        panels=[label for _column, label in available],
        lines=lines,
    )
    return Plot(uri, notes)
