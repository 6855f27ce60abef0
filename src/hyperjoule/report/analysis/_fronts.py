"""Pareto fronts of every target/model and metric as one long table (``hyperjoule pareto``).

One row per run on a front: which target/model and metric, the metric's goal (declared or
guessed), its value, the energy figure chosen (total, GPU, CPU, or net of the idle
baseline) with how it was measured, and the run's hyperparameters.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from hyperjoule.records import ENERGY_COMPONENTS, METHODS
from hyperjoule.report.analysis._pareto import pareto_table
from hyperjoule.report.analysis._summary import ReportError, analysed_metrics
from hyperjoule.report.load._frame import HP_PREFIX, METRIC_PREFIX, hp_columns, metric_columns
from hyperjoule.report.load._goals import MetricGoals

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ENERGY_FIGURES", "EnergyFigure", "energy_figure", "pareto_fronts"]

EnergyFigure = Literal["total", "gpu", "cpu", "net"]
ENERGY_FIGURES: tuple[EnergyFigure, ...] = ("total", "gpu", "cpu", "net")

FRONT_COLUMNS = (
    "target",
    "model",
    "metric",
    "goal",
    "goal_declared",
    "value",
    "energy",
    "energy_j",
    "energy_method",
    "run_id",
)
"""Leading columns of :func:`pareto_fronts`; a ``hyperparameters`` column follows."""


def _weakest(*methods: pd.Series[Any]) -> pd.Series[Any]:
    """Per row the weakest of several method columns (``unavailable`` ones ignored)."""
    import pandas as pd

    rank = {m: k for k, m in enumerate(METHODS)}
    frame = pd.concat([m.fillna("unavailable") for m in methods], axis=1)

    def pick(row: pd.Series[Any]) -> str:
        used = [m for m in row if m != "unavailable"]
        return max(used, key=lambda m: rank.get(m, len(METHODS))) if used else "unavailable"

    result: pd.Series[Any] = frame.apply(pick, axis=1)
    return result


def energy_figure(
    runs: pd.DataFrame, figure: EnergyFigure
) -> tuple[pd.Series[Any], pd.Series[Any]]:
    """The energy (J) of each run for ``figure`` and how it was measured.

    ``cpu`` is package + DRAM (the package alone where DRAM is not measured); ``net`` is
    the total minus idle power x duration, missing unless every measured component has a
    net figure (a baseline was taken).
    """
    import numpy as np

    if figure == "total":
        return runs["energy_total_j"], runs["energy_total_method"]
    if figure == "gpu":
        return runs["energy_gpu_j"], runs["energy_gpu_method"]
    if figure == "cpu":
        energy = runs["energy_cpu_pkg_j"].add(runs["energy_cpu_dram_j"], fill_value=0)
        energy = energy.where(runs["energy_cpu_pkg_j"].notna())
        return energy, _weakest(runs["energy_cpu_pkg_method"], runs["energy_cpu_dram_method"])
    net = runs["energy_total_j"] * 0.0
    complete = runs["energy_total_j"].notna()
    for c in ENERGY_COMPONENTS:
        gross, part = runs[f"energy_{c}_j"], runs[f"energy_{c}_net_j"]
        complete &= gross.isna() | part.notna()
        net = net + part.fillna(0.0).where(gross.notna(), 0.0)
    method = runs["energy_total_method"].where(complete, "unavailable")
    return net.where(complete, np.nan), method


def _plain(value: Any) -> Any:
    """A JSON-ready Python value (numpy scalars unwrapped, NaN and NA as None)."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    try:
        if value != value:  # NaN, pandas.NA
            return None
    except TypeError:
        return None
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def pareto_fronts(
    runs: pd.DataFrame,
    goals: MetricGoals,
    *,
    metric: str | None = None,
    figure: EnergyFigure = "total",
) -> pd.DataFrame:
    """Every target/model's front of energy against each metric, one row per run on it.

    Only succeeded runs with both figures count. Rows are grouped by target, model and
    metric, cheapest first. Columns: :data:`FRONT_COLUMNS` and ``hyperparameters``
    (a dict of the run's set hyperparameters).

    Args:
        runs: The flat run table (``load_runs``).
        goals: Declared metric goals (``load_tables(...).goals``); others are guessed.
        metric: Only this metric (with or without ``metric_``); None: every analysed one.
        figure: Which energy: ``total``, ``gpu``, ``cpu`` (package + DRAM) or ``net``.

    Raises:
        ReportError: ``metric`` was never recorded.
    """
    import pandas as pd

    if metric is not None:
        column = metric if metric.startswith(METRIC_PREFIX) else METRIC_PREFIX + metric
        known = metric_columns(runs.columns)
        if column not in known:
            names = ", ".join(c.removeprefix(METRIC_PREFIX) for c in known) or "none"
            raise ReportError(
                f"--metric {metric!r}: no such metric recorded; metrics here: {names}"
            )
        metrics = [column]
    else:
        metrics = analysed_metrics(runs)
    energy_j, method = energy_figure(runs, figure)
    data = runs.assign(_energy_j=energy_j, _energy_method=method)
    rows: list[dict[str, Any]] = []
    model = data["model"].astype(object).where(data["model"].notna(), "")
    for (target, model_name), part in data.groupby([data["target"], model], sort=True):
        for column in metrics:
            goal = goals.of(column, str(target))
            front = pareto_table(part, column, energy="_energy_j", maximize=goal.maximize)
            hps = hp_columns(front.columns)
            for _i, row in front.iterrows():
                rows.append(
                    {
                        "target": str(target),
                        "model": str(model_name) or None,
                        "metric": goal.metric,
                        "goal": goal.goal,
                        "goal_declared": goal.declared,
                        "value": _plain(row[column]),
                        "energy": figure,
                        "energy_j": _plain(row["_energy_j"]),
                        "energy_method": str(part.at[_i, "_energy_method"]),
                        "run_id": str(row["run_id"]),
                        "hyperparameters": {
                            h.removeprefix(HP_PREFIX): _plain(row[h])
                            for h in hps
                            if _plain(row[h]) is not None
                        },
                    }
                )
    fronts: pd.DataFrame = pd.DataFrame(rows, columns=[*FRONT_COLUMNS, "hyperparameters"])
    return fronts
