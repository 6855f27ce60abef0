"""The report's search section: each front found, its hypervolume, random mutation beside it."""

from __future__ import annotations

from collections.abc import Sequence

from hyperjoule.report._pool import FigurePool
from hyperjoule.report.analysis._search import SearchFront, pruned_count
from hyperjoule.report.render._figure_data import hypervolume_plot
from hyperjoule.report.render._html import Column, esc, figure, fmt_energy, fmt_num, table, warn

__all__ = ["search_section"]


def _checkpoints(n: int) -> list[int]:
    return sorted({k for k in (1, n // 4, n // 2, (3 * n) // 4, n) if k >= 1})


def _one(front: SearchFront, pool: FigurePool) -> str:
    import pandas as pd

    label = front.target + (f"/{front.model}" if front.model else "")
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in front.objectives)
    constraints = ", ".join(f"{k} {v.strip()}" for k, v in front.constraints.items())
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(front.statuses.items()))
    parts = [
        f"<h3>{esc(front.study)} experiments.{front.experiment}: {esc(label)} "
        f"({esc(front.sampler)})</h3>",
        f"<p>Objectives: {esc(objectives)}"
        + (f"; constraints: {esc(constraints)}" if constraints else "")
        + f". {front.trials} trials ({esc(statuses)}); energy spent "
        f"<b>{esc(fmt_energy(front.energy_j))}</b>, pruned and failed trials included"
        + (f" ({pruned_count(front)} pruned)" if pruned_count(front) else "")
        + ".</p>",
    ]
    if front.estimated:
        parts.append(warn("An objective on this front is an estimate (allow_estimates)."))
    rows = []
    for row in front.front:
        cells = {"trial": row["trial"], "run_id": row["run_id"]}
        for o in front.objectives:
            value = row["values"][o.name]
            shown = fmt_energy(value) if o.name.endswith("_j") else fmt_num(value)
            if row["methods"].get(o.name) == "estimated":
                shown += " (estimated)"
            cells[o.name] = shown
        cells["hyperparameters"] = " ".join(
            f"{k}={fmt_num(v)}" for k, v in row["hyperparameters"].items()
        )
        rows.append(cells)
    columns: list[Column] = [("trial", "trial", esc)]
    columns += [(o.name, o.name, esc) for o in front.objectives]
    columns += [("hyperparameters", "hyperparameters", esc), ("run_id", "run", esc)]
    if rows:
        parts.append(table(pd.DataFrame(rows), columns, caption="The front found"))
    else:
        parts.append(warn("No trial succeeded and met the constraints: no front yet."))
    n = len(front.hypervolume)
    random = front.random
    hv_rows = []
    for k in _checkpoints(n):
        cell: dict[str, float | None] = {"n": k, "search": front.hypervolume[k - 1]}
        if random is not None:
            curve = random["hypervolume"]
            cell["random"] = curve[k - 1] if k <= len(curve) else None
        hv_rows.append(cell)
    hv_columns: list[Column] = [("n", "after n trials (runs)", esc), ("search", "search", fmt_num)]
    if random is not None:
        studies = ", ".join(random["studies"])
        hv_columns.append(("random", f"random mutation ({studies})", fmt_num))
    caption = (
        "Hypervolume of the feasible front (normalised: the box between the best and just "
        "past the worst point of both)"
        if random is not None
        else "Hypervolume of the feasible front (normalised to its own points)"
    )
    parts.append(table(pd.DataFrame(hv_rows), hv_columns, caption=caption))
    curves = {f"search ({front.sampler})": front.hypervolume}
    if random is not None:
        curves["random mutation"] = list(random["hypervolume"])
    if n > 1:
        parts.append(
            figure(
                hypervolume_plot(curves, pool=pool),
                "Hypervolume over trials",
                f"hypervolume after each trial of search experiments.{front.experiment}",
            )
        )
    if random is not None:
        parts.append(
            f"<p>Random mutation of the same target spent "
            f"{esc(fmt_energy(random['energy_j']))} on its first {random['runs']} runs.</p>"
        )
    return "".join(parts)


def search_section(fronts: Sequence[SearchFront], pool: FigurePool | None = None) -> str:
    """HTML of every search's outcome (figures drawn inline without a ``pool``)."""
    drawer = pool if pool is not None else FigurePool(0)
    return "".join(_one(f, drawer) for f in fronts)
