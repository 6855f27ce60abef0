"""Printing what searches found (``hyperjoule pareto --search``) as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys

from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.analysis._search import SearchFront, pruned_count
from hyperjoule.report.render._html import fmt_energy

__all__ = ["hypervolume_line", "print_search_fronts"]


def _at(curve: list[float], n: int) -> float | None:
    return curve[n - 1] if 0 < n <= len(curve) else None


def hypervolume_line(front: SearchFront) -> str:
    """``hypervolume 0.61 after 40 trials (random mutation: 0.44 after 40 runs)``."""
    n = len(front.hypervolume)
    text = f"hypervolume {fmt_sig(_at(front.hypervolume, n), 3)} after {n} trials"
    checkpoints = sorted({max(1, n // 4), max(1, n // 2), n})
    if len(checkpoints) > 1:
        text += (
            " ("
            + ", ".join(f"{k}: {fmt_sig(_at(front.hypervolume, k), 3)}" for k in checkpoints)
            + ")"
        )
    random = front.random
    if random is not None:
        m = int(random["runs"])
        text += (
            f"; random mutation of the same target ({', '.join(random['studies'])}): "
            f"{fmt_sig(_at(random['hypervolume'], m), 3)} after {m} runs, "
            f"search after {m} trials: {fmt_sig(_at(front.hypervolume, m), 3)}"
        )
    return text


def _table(fronts: list[SearchFront]) -> None:
    from rich.table import Table

    from hyperjoule.cli._render import _console

    console = _console()
    if not fronts:
        console.print("no search experiment recorded (mode: search)")
        return
    for f in fronts:
        label = f.target + (f"/{f.model}" if f.model else "")
        objectives = ", ".join(f"{o.name} {o.direction}" for o in f.objectives)
        table = Table(
            title=f"search {f.study} experiments.{f.experiment}: {label} ({f.sampler})",
            show_lines=False,
        )
        for col in ("trial", *(o.name for o in f.objectives), "run", "hyperparameters"):
            table.add_column(col, overflow="fold")
        for row in f.front:
            cells = []
            for o in f.objectives:
                value = row["values"][o.name]
                est = " (estimated)" if row["methods"].get(o.name) == "estimated" else ""
                shown = fmt_energy(value) if o.name.endswith("_j") else fmt_sig(value, 4)
                cells.append(f"{shown}{est}")
            params = " ".join(f"{k}={fmt_sig(v, 4)}" for k, v in row["hyperparameters"].items())
            table.add_row(str(row["trial"]), *cells, row["run_id"], params)
        console.print(table)
        constraints = ", ".join(f"{k} {v.strip()}" for k, v in f.constraints.items())
        console.print(
            f"objectives: {objectives}" + (f"; constraints: {constraints}" if constraints else "")
        )
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(f.statuses.items()))
        console.print(
            f"{f.trials} trials ({statuses}); {len(f.front)} on the front; "
            f"energy spent {fmt_energy(f.energy_j)} (pruned and failed trials included)"
            + (f"; {pruned_count(f)} pruned" if pruned_count(f) else "")
        )
        console.print(hypervolume_line(f))
        if f.estimated:
            console.print(
                "[yellow]estimated[/]: an objective on this front is an estimate, not a "
                "measurement (allow_estimates)"
            )


def print_search_fronts(fronts: list[SearchFront], fmt: str) -> None:
    """Print the searches' fronts as ``table``, ``json`` (a list of objects) or ``csv``."""
    if fmt == "json":
        json.dump([f.to_dict() for f in fronts], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if fmt == "csv":
        objectives: list[str] = []
        hps: list[str] = []
        for f in fronts:
            objectives += [o.name for o in f.objectives if o.name not in objectives]
            for row in f.front:
                hps += [h for h in row["hyperparameters"] if h not in hps]
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(
            ["study", "experiment", "target", "model", "sampler", "trial", "run_id"]
            + objectives
            + [f"{o}_method" for o in objectives]
            + [f"hp_{h}" for h in hps]
        )
        for f in fronts:
            for row in f.front:
                writer.writerow(
                    [f.study, f.experiment, f.target, f.model or "", f.sampler]
                    + [row["trial"], row["run_id"]]
                    + [row["values"].get(o, "") for o in objectives]
                    + [row["methods"].get(o, "") for o in objectives]
                    + [row["hyperparameters"].get(h, "") for h in hps]
                )
        return
    _table(fronts)
