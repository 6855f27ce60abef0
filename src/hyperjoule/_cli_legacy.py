"""``hyperjoule convert`` and ``hyperjoule import``: the lab workflow's files, brought along.

:func:`register` adds both commands to the main Typer app. Reports (keys of old files
that cannot be expressed) go to stderr, one line each: ``warning: FILE: KEY: message``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from hyperjoule.legacy import LegacyWarning

__all__ = ["register"]


def _report(warnings: list[LegacyWarning]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``convert`` and ``import`` commands to ``app``."""

    @app.command("convert")
    def convert(
        models_config: Annotated[
            Path, typer.Argument(help="The old models_config.json (repository registry).")
        ],
        settings: Annotated[
            list[Path] | None, typer.Argument(help="Old settings/*.json study files.")
        ] = None,
        out_dir: Annotated[
            Path,
            typer.Option("-o", "--output", help="Directory to write targets.yaml and studies to."),
        ] = Path("."),
        legacy_root: Annotated[
            Path | None,
            typer.Option(
                "--legacy-root",
                help="Directory the old repository paths are relative to "
                "(default: the directory of MODELS_CONFIG or its parent, whichever holds "
                "the repositories).",
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    ) -> None:
        """Convert the lab's models_config.json and settings files into targets and studies."""
        from hyperjoule.legacy import convert_legacy

        result = convert_legacy(
            models_config, settings or [], out_dir, legacy_root=legacy_root, overwrite=force
        )
        _report(result.warnings)
        for failure in result.failed:
            typer.echo(f"error: {failure} (this file was not converted)", err=True)
        typer.echo(f"wrote {result.targets_path} (repositories relative to {result.legacy_root})")
        for path in result.study_paths:
            typer.echo(f"wrote {path}")
        if result.warnings:
            typer.echo(
                f"{len(result.warnings)} key(s) could not be converted (listed above and as "
                "comments in the files)"
            )
        if result.failed:
            typer.echo(
                f"{len(result.failed)} settings file(s) could not be converted (listed above); "
                f"{len(result.study_paths)} converted"
            )
        for path in result.study_paths:
            typer.echo(f"next: hyperjoule plan {path}")

    @app.command("import")
    def import_(
        sources: Annotated[
            list[Path],
            typer.Argument(
                help="Old result directories (run_*/), or experiment.json, summary.csv, "
                "raw_data.csv files."
            ),
        ],
        results_dir: Annotated[
            Path,
            typer.Option("--results-dir", help="Results directory (database and run records)."),
        ] = Path("results"),
        study: Annotated[
            str, typer.Option("--study", help="Study to import the runs into.")
        ] = "legacy-import",
        targets: Annotated[
            Path | None,
            typer.Option(
                "--targets",
                help="targets.yaml whose declarations type the old values and fill the "
                "defaults the old tool did not store.",
            ),
        ] = None,
    ) -> None:
        """Import the lab's measured runs into the results database, once."""
        from hyperjoule.legacy import import_legacy

        result = import_legacy(sources, results_dir, study=study, targets=targets)
        _report(result.warnings)
        typer.echo(
            f"imported {len(result.imported)} run(s) into study {result.study!r} "
            f"({result.database}); {len(result.already_present)} already there, "
            f"{result.merged_rows} duplicate description(s) merged"
        )
