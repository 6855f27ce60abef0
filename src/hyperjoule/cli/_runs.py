"""The ``runs`` command: recorded runs filtered, sorted and shown; ``register(app)`` adds it.

Filters go to SQL (records left out are never decoded). Sorting, the limit and every
output format work on the flat export schema (``hyperjoule export --schema``), so
``runs --format csv`` writes the columns ``export --format csv`` writes, and ``--sort``
takes any of them.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hyperjoule.cli._options import ResultsDir, StudyOption
from hyperjoule.errors import HyperjouleError

if TYPE_CHECKING:
    import pandas as pd

    from hyperjoule.records import RunRecord
    from hyperjoule.storage import ResultsStore, RunFilter

__all__ = ["RunsError", "parse_since", "register", "select_runs", "sort_column"]


class RunsError(HyperjouleError):
    """A ``runs`` option cannot be understood (unknown sort column, bad ``--since``)."""


class OutputFormat(str, Enum):
    """Output formats of ``hyperjoule runs``."""

    table = "table"
    json = "json"
    csv = "csv"


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_AGO_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since`` as the ISO 8601 UTC timestamp records hold.

    Accepts a time ago (``30m``, ``6h``, ``2d``, ``1w``) or an ISO date or date-time
    (``2026-12-01``, ``2026-12-01T08:00``; without an offset it is UTC).

    Raises:
        RunsError: Neither form.
    """
    now = now or datetime.now(timezone.utc)
    ago = _AGO.match(text.strip())
    if ago:
        moment = now - timedelta(seconds=float(ago.group(1)) * _AGO_UNIT_S[ago.group(2)])
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise RunsError(
                f"--since {text!r}: give a time ago (30m, 6h, 2d, 1w) or an ISO date "
                "(2026-12-01 or 2026-12-01T08:00, UTC unless an offset is given)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def sort_column(name: str, columns: list[str]) -> tuple[str, bool]:
    """The export column ``--sort NAME`` means, and whether it is descending (``-NAME``).

    ``NAME`` is an export column, or a hyperparameter or metric name without its
    ``hp_`` / ``metric_`` prefix.

    Raises:
        RunsError: No such column (the message lists the fixed ones).
    """
    descending = name.startswith("-")
    key = name.lstrip("-").strip()
    for candidate in (key, f"hp_{key}", f"metric_{key}"):
        if candidate in columns:
            return candidate, descending
    raise RunsError(
        f"--sort {name!r}: no such column; use an export column (e.g. energy_total_j, "
        "duration_s, started_at, status; all of them: hyperjoule export --schema), "
        "or a hyperparameter or metric name"
    )


def select_runs(
    frame: pd.DataFrame, sort: str | None, *, descending: bool = False, limit: int | None = None
) -> pd.DataFrame:
    """Sort the flat run table by one column (missing values last), then keep ``limit`` rows.

    Raises:
        RunsError: ``sort`` names no column.
    """
    if sort is not None:
        column, minus = sort_column(sort, list(frame.columns))
        frame = frame.sort_values(
            column, ascending=not (descending or minus), na_position="last", kind="stable"
        )
    if limit is not None:
        frame = frame.head(limit)
    out: pd.DataFrame = frame.reset_index(drop=True)
    return out


def _safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Names and messages come from targets: escaped, they cannot drive a terminal."""
    from hyperjoule._text import safe_text

    out: pd.DataFrame = frame.rename(columns=safe_text)
    for name in out.columns:
        if out[name].dtype == object or str(out[name].dtype) in ("str", "string"):
            out[name] = out[name].map(lambda v: safe_text(v) if isinstance(v, str) else v)
    return out


def _split(values: list[str] | None) -> list[str] | None:
    """``--status failed,timeout --status oom`` → ``[failed, timeout, oom]``."""
    if not values:
        return None
    return [v.strip() for text in values for v in text.split(",") if v.strip()]


def _check_statuses(statuses: list[str] | None) -> None:
    from hyperjoule.records import RunStatus

    known = [s.value for s in RunStatus]
    for status in statuses or []:
        if status not in known:
            raise RunsError(f"--status {status!r}: unknown; use one of {', '.join(known)}")


ListOption = list[str] | None


def runs(
    results_dir: ResultsDir = Path("results"),
    study: StudyOption = None,
    status: Annotated[
        ListOption, typer.Option("--status", help="Only these statuses (failed,timeout,...).")
    ] = None,
    target: Annotated[ListOption, typer.Option("--target", help="Only these targets.")] = None,
    model: Annotated[ListOption, typer.Option("--model", help="Only these models.")] = None,
    mode: Annotated[
        ListOption, typer.Option("--mode", help="Only these modes (default,mutation,...).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only runs started since: 30m, 6h, 2d, 1w or an ISO date."),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Sort by this column: any export column (energy_total_j, duration_s, "
            "started_at, ...) or a hyperparameter or metric name; '-NAME' or --desc for "
            "descending. Default: oldest first.",
        ),
    ] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show at most this many (after sorting).")
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", help="table, json (full records) or csv (export columns)."),
    ] = OutputFormat.table,
) -> None:
    """List recorded runs: filter, sort, limit; the mutated hyperparameters as columns."""
    from hyperjoule.report import load_tables, runs_frame
    from hyperjoule.storage import ResultsStore, RunFilter, count_stored_runs

    statuses = _split(status)
    _check_statuses(statuses)
    chosen = RunFilter(
        study=study,
        statuses=statuses,
        targets=_split(target),
        models=_split(model),
        modes=_split(mode),
        since=parse_since(since) if since is not None else None,
    )
    # Opening the store checks (and migrates) the database, or says how to get one.
    ResultsStore(results_dir, create=False).close()
    if study is None and count_stored_runs(results_dir) == 0:
        frame = runs_frame([]).runs  # nothing recorded yet: an empty listing, not an error
    else:
        # The flat table straight from SQLite (only the needed values of the kept runs);
        # whole records are read only for the rows shown.
        frame = load_tables(results_dir, study, runs=chosen).runs
    total = len(frame)
    frame = select_runs(frame, sort, descending=desc, limit=limit)
    if fmt is OutputFormat.csv:
        from hyperjoule.report import write_runs_stream

        write_runs_stream(_safe_frame(frame), sys.stdout, "csv")
        return
    with ResultsStore(results_dir, create=False) as store:
        records = _records(store, [str(r) for r in frame["run_id"]], chosen)
    if fmt is OutputFormat.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        from hyperjoule.cli._render_runs import print_runs_table

        print_runs_table(records, total=total)


_BY_ID_MAX = 256
"""Up to this many rows, whole records are read one by one; more, in one filtered scan."""


def _records(store: ResultsStore, run_ids: list[str], chosen: RunFilter) -> list[RunRecord]:
    """The whole records of ``run_ids``, in that order."""
    if len(run_ids) <= _BY_ID_MAX:
        found = {i: store.get_run(i) for i in run_ids}
    else:
        scan = store.iter_runs(
            study=chosen.study,
            statuses=chosen.statuses,
            targets=chosen.targets,
            models=chosen.models,
            modes=chosen.modes,
            since=chosen.since,
        )
        found = {r.run_id: r for r in scan}
    missing = [i for i in run_ids if found.get(i) is None]
    if missing:  # deleted between the two reads (another process)
        raise RunsError(f"{store.path}: run {missing[0]} disappeared while reading; run again")
    return [r for r in (found[i] for i in run_ids) if r is not None]


def register(app: typer.Typer) -> None:
    """Add the ``runs`` command to ``app``."""
    app.command("runs")(runs)
