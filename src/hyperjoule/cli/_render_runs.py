"""The ``runs`` table: one line per run that fits the terminal, never wraps.

Columns are chosen by priority until the width is used (the run, its status, target and
energy always); the mutated hyperparameters come next, one column each. A cell too long
for its column ends in an ellipsis; columns left out are named under the table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperjoule._text import safe_text
from hyperjoule.records import RunRecord
from hyperjoule.report._numbers import fmt_sig

__all__ = ["print_runs_table", "runs_console"]

_PIPED_WIDTH = 160
"""Width of the table when output is piped and ``COLUMNS`` is unset."""
_CELL_CAP = 40
"""No column is sized wider than this from its content (longer cells are cut)."""
_OVERHEAD = 3
"""Padding and separator characters per column."""
_MIN_WIDTH = 8
_MAIN_WIDTH = 24
"""Run id aside, the always-shown columns get up to this many characters first."""
"""A column is shown only when it gets at least this many characters (or its content)."""


def runs_console() -> Console:
    """A console as wide as the terminal (``COLUMNS`` wins), 160 when piped."""
    explicit = os.environ.get("COLUMNS", "").isdigit()
    width = None if sys.stdout.isatty() or explicit else _PIPED_WIDTH
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[RunRecord], str]
    priority: int  # lower shows first; 0 always shows
    justify: str = "left"
    cut: bool = True  # False: shown whole or left out (numbers, times)


def _duration(record: RunRecord) -> str:
    from hyperjoule.cli._render import format_duration

    return format_duration(record.duration_s)


def _energy(record: RunRecord) -> str:
    total = record.energy.total_j
    if total is None:
        return "unavailable"
    return f"{total:,.1f} J {record.energy.total_method}"


def _all_attempts(record: RunRecord) -> str:
    spent = record.attempts_energy
    if spent.total_j is None:
        return "unavailable"
    missing = f", {spent.unmeasured} unmeasured" if spent.unmeasured else ""
    return f"{spent.total_j:,.1f} J ({record.attempts}x{missing})"


def _co2e(record: RunRecord) -> str:
    carbon = record.carbon
    if carbon is None:
        return "-"
    return "unavailable" if carbon.co2e_g is None else f"{fmt_sig(carbon.co2e_g)} g"


def _metrics(record: RunRecord) -> str:
    return " ".join(f"{safe_text(k, 40)}={fmt_sig(v, 4)}" for k, v in record.metrics.items())


def _started(record: RunRecord) -> str:
    # Records hold UTC; minutes are enough to tell runs apart in a listing.
    return (record.started_at or "-")[:16].replace("T", " ")


def _label(record: RunRecord) -> str:
    return record.target if record.model is None else f"{record.target}/{record.model}"


def _hp_cell(name: str) -> Callable[[RunRecord], str]:
    def cell(record: RunRecord) -> str:
        if name not in record.hyperparameters:
            return "-"
        value = record.hyperparameters[name]
        text = fmt_sig(value, 4, grouping=False) if isinstance(value, float) else str(value)
        # A value the run did not mutate on purpose is its default: shown, but marked.
        return text if name in record.mutated else f"({text})"

    return cell


def _columns(records: list[RunRecord]) -> list[_Column]:
    mutated = sorted({name for r in records for name in r.mutated})
    carbon = any(r.carbon is not None for r in records)
    return [
        _Column("run_id", lambda r: r.run_id, 0),
        _Column("study", lambda r: r.study, 9),
        _Column("started (UTC)", _started, 7, cut=False),
        _Column(
            "target/model", lambda r: r.target if r.model is None else f"{r.target}/{r.model}", 0
        ),
        _Column("mode", lambda r: r.mode, 6),
        _Column("status", lambda r: r.status.value, 0),
        _Column("duration", _duration, 3, "right", cut=False),
        _Column("energy", _energy, 0, "right"),
        _Column("all attempts", _all_attempts, 8, "right"),
        *([_Column("CO2e est.", _co2e, 5, "right", cut=False)] if carbon else []),
        *(_Column(name, _hp_cell(name), 2, "right", cut=False) for name in mutated),
        _Column("metrics", _metrics, 4),
    ]


def _natural(columns: list[_Column], cells: list[list[str]]) -> list[int]:
    """Each column's width from its content, capped at :data:`_CELL_CAP`."""
    return [
        min(max([len(c.header)] + [len(row[i]) for row in cells]), _CELL_CAP)
        for i, c in enumerate(columns)
    ]


def _fit(columns: list[_Column], natural: list[int], width: int) -> dict[int, int]:
    """The columns to show and their widths, so that the table fits ``width``.

    The main columns get up to :data:`_MAIN_WIDTH` characters; the others are taken by
    priority while each can get at least :data:`_MIN_WIDTH` (or its content, when
    shorter); the space left then widens them towards their content, again by priority.
    The run id is never cut.
    """
    floor = [
        # A cut number or time would read as another one: those show whole, or not at all.
        natural[i]
        if i == 0 or not c.cut
        else min(natural[i], _MAIN_WIDTH if c.priority == 0 else max(_MIN_WIDTH, len(c.header)))
        for i, c in enumerate(columns)
    ]
    order = sorted(range(len(columns)), key=lambda k: (columns[k].priority, k))
    widths: dict[int, int] = {}
    used = 0
    for i in order:
        if columns[i].priority == 0 or used + floor[i] + _OVERHEAD <= width:
            widths[i] = floor[i]
            used += floor[i] + _OVERHEAD
    spare = width - used
    for i in order:
        if i in widths and spare > 0:
            grow = min(natural[i] - widths[i], spare)
            widths[i] += grow
            spare -= grow
    return dict(sorted(widths.items()))


def print_runs_table(records: list[RunRecord], *, total: int | None = None) -> None:
    """Print runs as a table as wide as the terminal; cut cells end in an ellipsis.

    Args:
        records: The runs to show, in order.
        total: How many runs matched before ``--limit`` (shown as ``n of total``).
    """
    console = runs_console()
    columns = _columns(records)
    cells = [[safe_text(c.cell(r)) for c in columns] for r in records]
    natural = _natural(columns, cells)
    widths = _fit(columns, natural, console.width)
    shown = list(widths)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    for i in shown:
        column = columns[i]
        table.add_column(
            escape(column.header),
            no_wrap=True,
            overflow="ellipsis",
            justify=column.justify,  # type: ignore[arg-type]
            width=widths[i],
        )
    for row in cells:
        table.add_row(*(escape(row[i]) for i in shown))
    console.print(table)
    count = (
        f"{len(records)} runs"
        if total in (None, len(records))
        else (f"{len(records)} of {total} runs (--limit)")
    )
    hidden = [columns[i].header for i in range(len(columns)) if i not in shown]
    if hidden:
        count += f"; not shown at this width: {', '.join(hidden)} (--format csv has every column)"
    console.print(escape(count), soft_wrap=True)
