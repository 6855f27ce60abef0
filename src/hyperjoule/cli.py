"""The ``hyperjoule`` command line: a thin layer over the library.

``main()`` returns the exit status: 0 the command did its job (failed runs are recorded,
not fatal); 1 with ``--fail-on-error`` when a run failed; 2 invalid input or environment
(one line on stderr, nothing written); 130 interrupted (state saved; ``run`` resumes).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hyperjoule.errors import HyperjouleError

__all__ = ["app", "main"]

logger = logging.getLogger("hyperjoule")

app = typer.Typer(
    name="hyperjoule",
    help="Run training commands under many hyperparameter variations and measure their energy.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ResultsDir = Annotated[
    Path, typer.Option("--results-dir", help="Results directory (database and run records).")
]
RerunOption = Annotated[
    str | None,
    typer.Option(
        "--rerun",
        help="Run again the slots whose final status is in this list "
        "(e.g. failed,timeout,oom,metrics_missing); earlier records are kept.",
    ),
]
_DEBUG = {"on": False}


def debug_enabled() -> bool:
    """Whether ``--debug`` was given (tracebacks and debug logs wanted)."""
    return _DEBUG["on"]


def package_version() -> str:
    """The installed hyperjoule version (``unknown`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hyperjoule")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hyperjoule {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    _DEBUG["on"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hyperjoule: %(levelname)s: %(message)s"))
    root = logging.getLogger("hyperjoule")
    root.handlers[:] = [handler]
    root.setLevel(level)


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study file (YAML or JSON).")],
    results_dir: ResultsDir = Path("results"),
    fail_on_error: Annotated[
        bool, typer.Option("--fail-on-error", help="Exit 1 when any run did not succeed.")
    ] = False,
    rerun: RerunOption = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Runs at once (default: the study's executor.jobs, else GPUs / gpus_per_run, "
            "else 1).",
        ),
    ] = None,
    tail: Annotated[
        bool,
        typer.Option(
            "--tail", help="Show the last log line of each run in flight (piped: after each run)."
        ),
    ] = False,
) -> None:
    """Run a study, or resume it: finished runs are kept and never run twice.

    On a terminal, each run in flight has a line (slot, target/model, mutated values,
    elapsed time, attempt) under the study's ETA; piped output has one line per event.
    """
    from hyperjoule._live import LiveConsole
    from hyperjoule._render import print_study_result
    from hyperjoule.config import load_study
    from hyperjoule.execution import parse_rerun, run_study

    statuses = parse_rerun(rerun)
    loaded = load_study(study)
    with LiveConsole(tail=tail) as observer:
        result = run_study(loaded, results_dir, observer=observer, rerun=statuses, jobs=jobs)
    print_study_result(result, results_dir)
    if result.interrupted:
        raise typer.Exit(130)
    if fail_on_error and result.failed:
        raise typer.Exit(1)


@app.command()
def plan(
    study: Annotated[Path, typer.Argument(help="Study file (YAML or JSON).")],
    results_dir: ResultsDir = Path("results"),
    rerun: RerunOption = None,
) -> None:
    """Show every planned run, the count and a time estimate; runs and writes nothing."""
    from hyperjoule._render import print_plan
    from hyperjoule.config import load_study
    from hyperjoule.execution import check_assets, load_plan_state, parse_rerun
    from hyperjoule.storage import ResultsStore

    statuses = parse_rerun(rerun)
    loaded = load_study(study)
    check_assets(loaded)
    store = (
        ResultsStore(results_dir, create=False)
        if (results_dir / "hyperjoule.db").exists()
        else None
    )
    try:
        state = load_plan_state(loaded, store, save=False, rerun=statuses)
    finally:
        if store is not None:
            store.close()
    print_plan(loaded, state)


@app.command()
def targets(
    targets_file: Annotated[Path, typer.Argument(help="Targets file (YAML or JSON).")],
) -> None:
    """List the targets of a targets file, their models and hyperparameters."""
    from hyperjoule._render import print_targets
    from hyperjoule.config import load_targets

    print_targets(load_targets(targets_file))


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
) -> None:
    """Write a targets.yaml, a study.yaml and the bundled training scripts to start from."""
    from hyperjoule._scaffold import scaffold

    written = scaffold(directory)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: hyperjoule plan {directory / 'study.yaml'}")


def _register_plugins() -> None:
    """Commands that live in their own modules (each module imports its heavy parts lazily)."""
    from hyperjoule import _cli_legacy, _cli_report, _cli_runs, _doctor

    _cli_runs.register(app)
    _cli_report.register(app)
    _doctor.register(app)
    _cli_legacy.register(app)


_register_plugins()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = app(args=args, prog_name="hyperjoule", standalone_mode=False)
    except HyperjouleError as e:
        if _DEBUG["on"] or "--debug" in args:
            logger.exception("error")
        message = " ".join(str(e).split("\n"))
        sys.stderr.write(f"hyperjoule: error: {message}\n")
        return 2
    except typer.Abort:
        sys.stderr.write("hyperjoule: interrupted\n")
        return 130
    except typer.TyperException as e:  # usage errors: bad option, missing argument
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"hyperjoule: error: {e.format_message()}\n")
        return int(e.exit_code)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
