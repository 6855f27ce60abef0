"""Printing ``hyperjoule pareto``'s fronts as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Any

from hyperjoule.report._numbers import fmt_sig
from hyperjoule.report.render._html import fmt_energy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["front_records", "print_fronts"]


def front_records(fronts: pd.DataFrame) -> list[dict[str, Any]]:
    """The front rows as plain dicts (the JSON output)."""
    return [{str(k): v for k, v in row.items()} for row in fronts.to_dict(orient="records")]


def _csv(fronts: pd.DataFrame) -> None:
    rows = front_records(fronts)
    hps: list[str] = []
    for row in rows:
        hps += [h for h in row["hyperparameters"] if h not in hps]
    fields = [c for c in fronts.columns if c != "hyperparameters"]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([*fields, *(f"hp_{h}" for h in hps)])
    for row in rows:
        values = ["" if row[f] is None else row[f] for f in fields]
        params = row["hyperparameters"]
        writer.writerow([*values, *("" if params.get(h) is None else params[h] for h in hps)])


def _table(fronts: pd.DataFrame) -> None:
    from rich.table import Table

    from hyperjoule.cli._render import _console

    console = _console()
    if fronts.empty:
        return
    table = Table(title="Pareto fronts: energy against each metric", show_lines=False)
    for col in ("target/model", "metric", "value", "energy", "method", "run", "hyperparameters"):
        table.add_column(col, overflow="fold")
    guessed: list[str] = []
    for row in front_records(fronts):
        label = row["target"] + (f"/{row['model']}" if row["model"] else "")
        mark = "" if row["goal_declared"] else " (guessed)"
        if not row["goal_declared"] and row["metric"] not in guessed:
            guessed.append(row["metric"])
        params = " ".join(f"{k}={fmt_sig(v, 4)}" for k, v in row["hyperparameters"].items())
        table.add_row(
            label,
            f"{row['metric']} {row['goal']}{mark}",
            fmt_sig(row["value"], 4),
            f"{fmt_energy(row['energy_j'])} {row['energy']}",
            row["energy_method"],
            row["run_id"],
            params or "-",
        )
    console.print(table)
    if guessed:
        console.print(
            f"goal guessed from the name for {', '.join(guessed)}: declare "
            "'goal: minimize' or 'goal: maximize' under the target's metrics"
        )


def print_fronts(fronts: pd.DataFrame, fmt: str, figure: str = "total") -> None:
    """Print the fronts as ``table``, ``json`` (a list of objects) or ``csv``.

    With no front at all, a note on stderr says why (stdout stays valid JSON/CSV).
    """
    if fronts.empty:
        hint = (
            "; net energy needs an idle baseline (hyperjoule baseline, or baseline_s in the study)"
            if figure == "net"
            else ""
        )
        sys.stderr.write(
            f"hyperjoule: note: no run is on a front: no succeeded run has both {figure} "
            f"energy and a metric{hint}\n"
        )
    if fmt == "json":
        json.dump(front_records(fronts), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif fmt == "csv":
        _csv(fronts)
    else:
        _table(fronts)
