"""The ``report`` and ``export`` commands; ``register(app)`` adds them to the CLI.

pandas and matplotlib are imported inside the commands, so they cost nothing to the
start-up of other commands.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from hyperjoule.cli._options import ResultsDir, StudyOption, debug_enabled
from hyperjoule.errors import HyperjouleError

__all__ = ["ExportFormat", "register"]


class ExportFormat(str, Enum):
    """File formats of ``hyperjoule export``."""

    csv = "csv"
    parquet = "parquet"
    jsonl = "jsonl"


P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("hyperjoule")


def one_line_failures(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an unexpected failure of an analysis command into one line and exit 1.

    Bad input (a ``HyperjouleError``) still goes to the CLI's exit 2. Anything else is a
    bug met on some data: the user gets one line naming it, the traceback only with
    ``--debug``.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (HyperjouleError, typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:
            if debug_enabled():
                logger.exception("%s failed", command.__name__)
            text = " ".join(str(e).split()) or "no message"
            sys.stderr.write(
                f"hyperjoule: error: {command.__name__} failed: {type(e).__name__}: {text}"
                " (this is a bug; --debug shows the traceback)\n"
            )
            raise typer.Exit(1) from None

    return wrapper


def report(
    results_dir: ResultsDir = Path("results"),
    study: StudyOption = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    target_metric: Annotated[
        str | None,
        typer.Option(
            "--target-metric",
            help="Energy-to-target threshold, e.g. 'test_accuracy>=0.9' (default: automatic).",
        ),
    ] = None,
    timeline_run: Annotated[
        str | None,
        typer.Option(
            "--timeline-run",
            help="Run whose GPU timeline to show (default: the newest run that has one).",
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report: summary, Pareto fronts, sensitivity, cost."""
    from hyperjoule.report import write_report

    info = write_report(
        results_dir,
        output,
        study=study,
        target_metric=target_metric,
        timeline_run=timeline_run,
    )
    typer.echo(f"wrote {info.path} ({info.runs:,} runs)")


def export(
    fmt: Annotated[ExportFormat | None, typer.Option("--format", help="File format.")] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write, or '-' for standard output (csv, jsonl). Default: standard "
            "output when it is piped (csv, jsonl), else runs.<format> in the current directory.",
        ),
    ] = None,
    results_dir: ResultsDir = Path("results"),
    study: StudyOption = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the column documentation and exit.")
    ] = False,
) -> None:
    """Export every run as one flat row (columns: 'hyperjoule export --schema').

    The column documentation, export-schema.md, ships inside the package
    (hyperjoule/docs/); --schema prints it.
    """
    from hyperjoule.report import (
        STREAM_FORMATS,
        ReportError,
        export_runs,
        load_runs,
        write_runs_stream,
    )

    if schema:
        typer.echo(shipped_document("export-schema.md"), nl=False)
        return
    if fmt is None:
        raise ReportError("export needs --format csv, parquet or jsonl")
    to_stdout = output == "-" or (
        output is None and fmt.value in STREAM_FORMATS and not sys.stdout.isatty()
    )
    if to_stdout:
        if fmt.value not in STREAM_FORMATS:
            raise ReportError(
                f"--format {fmt.value} cannot go to standard output; "
                f"give a file: -o runs.{fmt.value}"
            )
        write_runs_stream(load_runs(results_dir, study), sys.stdout, fmt.value)
        sys.stdout.flush()
        return
    path = Path(output) if output is not None else Path.cwd() / f"runs.{fmt.value}"
    count = export_runs(results_dir, path, fmt.value, study=study)
    typer.echo(f"wrote {path} ({count:,} runs, {fmt.value})")


def shipped_document(name: str) -> str:
    """The text of a document shipped in the package's ``docs/`` folder."""
    from importlib.resources import files

    return files("hyperjoule").joinpath("docs").joinpath(name).read_text(encoding="utf-8")


class FrontFormat(str, Enum):
    """Output formats of ``hyperjoule pareto``."""

    table = "table"
    json = "json"
    csv = "csv"


class EnergyChoice(str, Enum):
    """Energy figures ``hyperjoule pareto`` can put against the metrics."""

    total = "total"
    gpu = "gpu"
    cpu = "cpu"
    net = "net"


def pareto(
    results_dir: ResultsDir = Path("results"),
    study: StudyOption = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="Only this metric (default: every one).")
    ] = None,
    energy: Annotated[
        EnergyChoice,
        typer.Option(
            "--energy", help="Energy figure: total, gpu, cpu (package + DRAM) or net of idle."
        ),
    ] = EnergyChoice.total,
    fmt: Annotated[FrontFormat, typer.Option("--format", help="Output format.")] = (
        FrontFormat.table
    ),
    search: Annotated[
        bool,
        typer.Option(
            "--search",
            help="The fronts search experiments found over their own objectives, with "
            "hypervolume over trials and random mutation of the same target beside them.",
        ),
    ] = False,
) -> None:
    """List the runs on each target/model's Pareto front of energy against each metric."""
    if search:
        _search_fronts(results_dir, study, fmt.value)
        return
    from hyperjoule.cli._render_fronts import print_fronts
    from hyperjoule.report import load_tables
    from hyperjoule.report.analysis._fronts import pareto_fronts

    tables = load_tables(results_dir, study)
    fronts = pareto_fronts(tables.runs, tables.goals, metric=metric, figure=energy.value)
    print_fronts(fronts, fmt.value, energy.value)


def _search_fronts(results_dir: Path, study: str | None, fmt: str) -> None:
    from hyperjoule.cli._render_search import print_search_fronts
    from hyperjoule.report.analysis._search import search_fronts
    from hyperjoule.storage import ResultsStore

    with ResultsStore(results_dir, create=False) as store:
        records = list(store.iter_runs(modes=("search", "mutation")))
    print_search_fronts(search_fronts(records, study), fmt)


def register(app: typer.Typer) -> None:
    """Add the ``report``, ``export`` and ``pareto`` commands to ``app``."""
    app.command("report")(one_line_failures(report))
    app.command("export")(one_line_failures(export))
    app.command("pareto")(one_line_failures(pareto))
