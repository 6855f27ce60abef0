"""The study commands: ``run``, ``plan``, ``targets`` and ``init``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hyperjoule.cli._options import RerunOption, ResultsDir, StudyFile

if TYPE_CHECKING:
    from hyperjoule.config import ExecutorConfig

__all__ = ["ExecutorKind", "register"]


class ExecutorKind(str, Enum):
    """Executors of ``hyperjoule run --executor``."""

    local = "local"
    ray = "ray"


def _executor_settings(
    settings: ExecutorConfig, kind: ExecutorKind | None, address: str | None
) -> ExecutorConfig:
    """The study's ``executor`` with ``--executor`` and ``--address`` applied."""
    from hyperjoule.config import ExecutorConfig

    if kind is not None and kind.value != settings.kind:
        # Settings of the other kind do not carry over; the shared ones do.
        settings = ExecutorConfig(
            kind=kind.value, jobs=settings.jobs, gpus_per_run=settings.gpus_per_run
        )
    if address is not None:
        if settings.kind != "ray":
            raise typer.BadParameter(
                "--address is for a Ray cluster; add --executor ray", param_hint="--address"
            )
        settings = settings.model_copy(update={"address": address})
    return settings


def register(app: typer.Typer) -> None:
    """Add ``run``, ``plan``, ``targets`` and ``init`` to the ``hyperjoule`` app."""

    @app.command()
    def run(
        study: StudyFile,
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
                "--tail",
                help="Show the last log line of each run in flight (piped: after each run).",
            ),
        ] = False,
        executor: Annotated[
            ExecutorKind | None,
            typer.Option(
                "--executor",
                help="Where runs execute: local (this machine) or ray (a Ray cluster, see "
                "docs/ray.md). Default: the study's executor.kind.",
            ),
        ] = None,
        address: Annotated[
            str | None,
            typer.Option("--address", help="Ray cluster address: auto or HOST:PORT (ray only)."),
        ] = None,
    ) -> None:
        """Run a study, or resume it: finished runs are kept and never run twice.

        On a terminal, each run in flight has a line (slot, target/model, mutated values,
        elapsed time, attempt) under the study's ETA; piped output has one line per event.
        """
        from hyperjoule.cli._live import LiveConsole
        from hyperjoule.cli._render import print_study_result
        from hyperjoule.config import load_study
        from hyperjoule.execution import parse_rerun, run_study

        statuses = parse_rerun(rerun)
        loaded = load_study(study)
        settings = _executor_settings(loaded.study.executor, executor, address)
        with LiveConsole(tail=tail) as observer:
            result = run_study(
                loaded,
                results_dir,
                observer=observer,
                rerun=statuses,
                jobs=jobs,
                executor=settings,
            )
        print_study_result(result, results_dir)
        if result.interrupted:
            raise typer.Exit(130)
        if fail_on_error and result.failed:
            raise typer.Exit(1)

    @app.command()
    def plan(
        study: StudyFile,
        results_dir: ResultsDir = Path("results"),
        rerun: RerunOption = None,
    ) -> None:
        """Show every planned run, the count and a time estimate; runs and writes nothing."""
        from hyperjoule.cli._render import print_plan
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
        from hyperjoule.cli._render import print_targets
        from hyperjoule.config import load_targets

        print_targets(load_targets(targets_file))

    @app.command()
    def init(
        directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    ) -> None:
        """Write a targets.yaml, a study.yaml and the bundled training scripts to start from."""
        from hyperjoule.cli._scaffold import scaffold

        written = scaffold(directory)
        for path in written:
            typer.echo(f"wrote {path}")
        typer.echo(f"next: hyperjoule plan {directory / 'study.yaml'}")
