"""Drawing the report's figures from plain arrays, with matplotlib's Agg canvas, to PNG.

Every ``draw_*`` function takes picklable data (numpy arrays, strings, small dataclasses)
and returns a ``data:image/png;base64,...`` URI, so it can run in a worker process. No
pyplot and no global backend switch: figures are ``matplotlib.figure.Figure`` objects, so
a notebook's backend is left alone.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hyperjoule.report.analysis._stats import FloatArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EffectColumn",
    "EffectRow",
    "ParetoPanel",
    "draw_effects",
    "draw_parallel",
    "draw_pareto",
    "draw_sensitivity",
    "draw_summary",
    "draw_timeline",
]

_DPI = 96
GREY = "#8a8f98"
RED = "#d1495b"
BLUE = "#2e6f9e"
ORANGE = "#e08a1e"
_COLOURS = (RED, BLUE, ORANGE, "#3b8b5a", "#7a5195", GREY)


def _figure(
    width_in: float, height_in: float, *, layout: Literal["constrained"] | None = "constrained"
) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=_DPI, layout=layout)


def _grid(
    rows: int, cols: int, panel_w_in: float, panel_h_in: float, *, share: bool
) -> tuple[Figure, Any]:
    """A grid of axes with fixed margins in inches.

    Grids skip matplotlib's constrained layout, which measures every tick label of every
    panel and took most of the report's time on large studies.
    """
    # Panels that do not share their y axis need room for their own tick labels.
    left, right, bottom, top, gap_h = 0.75, 0.15, 0.55, 0.35, 0.45
    gap_w = 0.3 if share else 0.8
    width = left + right + cols * panel_w_in + (cols - 1) * gap_w
    height = bottom + top + rows * panel_h_in + (rows - 1) * gap_h
    fig = _figure(width, height, layout=None)
    axes = fig.subplots(
        rows,
        cols,
        squeeze=False,
        sharex="col" if share else False,
        sharey="row" if share else False,
        gridspec_kw={
            "left": left / width,
            "right": 1 - right / width,
            "bottom": bottom / height,
            "top": 1 - top / height,
            "wspace": gap_w / panel_w_in,
            "hspace": gap_h / panel_h_in,
        },
    )
    return fig, axes


def _png(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def energy_axis(label: str, estimated: bool, unit: str) -> str:
    """An energy axis label with its unit; estimates say so."""
    return f"{label} ({unit})" + (" — ESTIMATED" if estimated else "")


def _mark_estimate(ax: Axes) -> None:
    ax.text(
        0.99,
        0.01,
        "estimate",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        color=ORANGE,
        fontsize=8,
        fontweight="bold",
    )


def _style(ax: Axes, *, grid: str = "both") -> None:
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, axis=grid)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ParetoPanel:
    """One metric's panel: every (sampled) run, and the front in energy order."""

    title: str
    metric: str
    energy: FloatArray
    values: FloatArray
    front_energy: FloatArray
    front_values: FloatArray


def draw_pareto(panels: list[ParetoPanel], *, estimated: bool, unit: str, size: float) -> str:
    """Energy (x) against each metric (y), the Pareto front as a red staircase."""
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = _grid(rows, cols, 3.4, 2.6, share=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for i, panel in enumerate(panels):
        ax = axes.flat[i]
        ax.scatter(
            panel.energy, panel.values, s=size, color=GREY, alpha=0.6, linewidths=0, label="runs"
        )
        ax.step(panel.front_energy, panel.front_values, where="post", color=RED, linewidth=1.2)
        ax.scatter(
            panel.front_energy,
            panel.front_values,
            s=size + 14,
            color=RED,
            zorder=3,
            label="Pareto front",
        )
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(energy_axis("total energy", estimated, unit), fontsize=8)
        ax.set_ylabel(panel.metric, fontsize=8)
        _style(ax)
        if estimated:
            _mark_estimate(ax)
        if i == 0:
            ax.legend(fontsize=7, loc="best")
    return _png(fig)


@dataclass(frozen=True)
class EffectColumn:
    """One hyperparameter: numeric values, or category codes with their level names."""

    name: str
    values: FloatArray
    levels: tuple[str, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class EffectRow:
    """One outcome (energy or a metric), already scaled to its unit."""

    label: str
    values: FloatArray
    energy: bool


MEDIAN_LINE_MIN_RUNS = 100
"""Fewest runs for a median line over a continuous hyperparameter (ten per decile)."""


def _median_line(x: FloatArray, y: FloatArray, bins: int = 10) -> tuple[FloatArray, FloatArray]:
    """Median of y per distinct x (few distinct values) or per decile of x; empty if unsure.

    A line through single points, or through deciles of a handful of runs, shows noise.
    """
    distinct = np.unique(x)
    if distinct.size <= 12:
        if distinct.size < 2 or x.size < 2 * distinct.size:
            return np.array([]), np.array([])
        return distinct, np.array([np.median(y[x == v]) for v in distinct])
    if x.size < MEDIAN_LINE_MIN_RUNS:
        return np.array([]), np.array([])
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    centers, meds = [], []
    for b in range(edges.size - 1):
        sel = which == b
        if sel.any():
            centers.append(float(np.median(x[sel])))
            meds.append(float(np.median(y[sel])))
    return np.array(centers), np.array(meds)


def draw_effects(
    columns: list[EffectColumn], rows: list[EffectRow], *, estimated: bool, size: float
) -> str:
    """Each outcome (rows) against each hyperparameter (columns), with a median line."""
    fig, axes = _grid(len(rows), len(columns), 1.9, 1.6, share=True)
    rng = np.random.default_rng(2)
    for r, row in enumerate(rows):
        y = row.values
        for c, col in enumerate(columns):
            ax = axes[r, c]
            x = col.values
            keep = np.isfinite(x) & np.isfinite(y)
            if col.levels:
                codes = x[keep].astype(int)
                jitter = rng.uniform(-0.2, 0.2, codes.size)
                ax.scatter(codes + jitter, y[keep], s=size, color=BLUE, alpha=0.6, linewidths=0)
                meds = [
                    float(np.median(y[keep][codes == k])) if (codes == k).any() else np.nan
                    for k in range(len(col.levels))
                ]
                ax.scatter(range(len(col.levels)), meds, marker="_", s=300, color=RED)
                ax.set_xticks(range(len(col.levels)), list(col.levels), fontsize=7)
            else:
                ax.scatter(x[keep], y[keep], s=size, color=BLUE, alpha=0.6, linewidths=0)
                bx, by = _median_line(x[keep], y[keep])
                if bx.size:
                    ax.plot(bx, by, color=RED, linewidth=1.2)
                if col.log:
                    ax.set_xscale("log")
            _style(ax)
            if r == len(rows) - 1:
                ax.set_xlabel(col.name, fontsize=8)
            if c == 0:
                ax.set_ylabel(row.label, fontsize=8)
            if estimated and row.energy:
                _mark_estimate(ax)
    return _png(fig)


def draw_sensitivity(
    names: list[str], series: list[tuple[str, FloatArray, FloatArray, FloatArray]]
) -> str:
    """Rank correlation (with interval) of each hyperparameter, one colour per outcome.

    Args:
        names: Hyperparameters, top to bottom.
        series: ``(outcome label, value, low, high)`` per outcome, arrays aligned to names.
    """
    fig = _figure(6.5, 0.45 * max(len(names), 2) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    step = 0.8 / max(len(series), 1)
    for k, (label, val, low, high) in enumerate(series):
        pos = np.arange(len(names)) + k * step - 0.4 + step / 2
        # A bootstrap interval need not contain its estimate; matplotlib wants >= 0 arms.
        err = np.clip(np.vstack([val - low, high - val]), 0, None)
        err[~np.isfinite(err)] = 0
        ax.errorbar(
            val,
            pos,
            xerr=err,
            fmt="o",
            ms=4,
            capsize=2,
            color=_COLOURS[k % len(_COLOURS)],
            label=label,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("rank correlation with the outcome (95% interval)", fontsize=8)
    _style(ax, grid="x")
    fig.legend(fontsize=7, loc="outside lower center", ncol=len(series))
    return _png(fig)


def draw_summary(
    groups: list[str],
    mean: FloatArray,
    low: FloatArray,
    high: FloatArray,
    *,
    estimated: bool,
    unit: str,
) -> str:
    """Horizontal bars of mean energy per group, whiskers for the interval (when known)."""
    fig = _figure(6.5, 0.4 * max(len(groups), 2) + 1.0)
    ax = fig.add_subplot(1, 1, 1)
    pos = np.arange(len(groups))
    ax.barh(pos, mean, color=BLUE, alpha=0.8, hatch="//" if estimated else None, edgecolor="white")
    known = np.isfinite(low) & np.isfinite(high)
    if known.any():
        err = np.clip(np.vstack([mean[known] - low[known], high[known] - mean[known]]), 0, None)
        ax.errorbar(mean[known], pos[known], xerr=err, fmt="none", color="black", capsize=3)
    ax.set_yticks(pos, groups, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(energy_axis("mean total energy per succeeded run", estimated, unit), fontsize=8)
    _style(ax, grid="x")
    if estimated:
        _mark_estimate(ax)
    return _png(fig)


def draw_parallel(iso: FloatArray, par: FloatArray, *, estimated: bool, unit: str) -> str:
    """Parallel against isolated energy, with the line of equal energy."""
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(iso, par, s=18, color=BLUE)
    top = float(np.nanmax(np.concatenate([iso, par]))) * 1.05
    ax.plot([0, top], [0, top], color=GREY, linewidth=1, linestyle="--", label="equal energy")
    ax.set_xlabel(energy_axis("isolated run energy", estimated, unit), fontsize=8)
    ax.set_ylabel(energy_axis("parallel run energy (combined)", estimated, unit), fontsize=8)
    _style(ax)
    ax.legend(fontsize=7)
    if estimated:
        _mark_estimate(ax)
    return _png(fig)


def draw_timeline(
    run_id: str, panels: list[str], lines: list[tuple[str, FloatArray, list[FloatArray]]]
) -> str:
    """Stacked panels (power, temperature, utilisation) over time, one line per GPU.

    Args:
        run_id: The run, for the title.
        panels: Y-axis label of each panel.
        lines: ``(GPU label, time_s, [values per panel])`` per GPU.
    """
    fig = _figure(8.0, 1.9 * max(len(panels), 1) + 0.5)
    axes = [fig.add_subplot(len(panels), 1, i + 1) for i in range(len(panels))]
    for label, time_s, values in lines:
        for ax, series in zip(axes, values, strict=True):
            ax.plot(time_s, series, linewidth=1, label=label)
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        ax.set_ylabel(panel, fontsize=8)
        _style(ax)
        if i == len(axes) - 1:
            ax.set_xlabel("time since the run started (s)", fontsize=8)
        if i == 0:
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"run {run_id}", fontsize=10)
    return _png(fig)


def draw_hypervolume(curves: dict[str, list[float]]) -> str:
    """Hypervolume after each trial (or run), one line per search or random mutation."""
    fig = _figure(5.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    colours = [BLUE, ORANGE, RED, GREY]
    for k, (label, values) in enumerate(curves.items()):
        x = np.arange(1, len(values) + 1)
        ax.step(x, values, where="post", color=colours[k % len(colours)], label=label)
    ax.set_xlabel("trials (runs)", fontsize=8)
    ax.set_ylabel("hypervolume of the feasible front (normalised)", fontsize=8)
    _style(ax)
    ax.legend(fontsize=7)
    return _png(fig)
