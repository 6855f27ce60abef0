"""``hyperjoule convert`` and ``hyperjoule import``: the lab workflow's files, brought along.

:func:`register` adds both commands to the main Typer app. Reports (keys of old files
that cannot be expressed) go to stderr, one line each: ``warning: FILE: KEY: message``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hyperjoule.cli._options import ResultsDir

if TYPE_CHECKING:
    from hyperjoule.legacy import ImportResult, LegacyWarning

__all__ = ["register"]


def _report(warnings: list[LegacyWarning]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _reason_kind(reason: str) -> str:
    if reason.startswith("id variant"):
        return "id variants (e.g. stage-prefixed ids)"
    if reason.startswith("same id, timestamps"):
        return "same id, timestamps a fraction of a millisecond apart"
    return reason


def _import_table(result: ImportResult) -> None:
    """The short report of an import: files, runs, duplicates, conflicts, skipped files."""
    # One line per CSV; experiment.json files (one run each) one line per session.
    read: dict[str, int] = {}
    skipped: dict[tuple[str, str], list[Path]] = {}
    for f in result.files:
        if f.skipped is not None:
            skipped.setdefault((f.path.name, f.skipped), []).append(f.path)
        elif f.path.name == "experiment.json":
            key = f"{_short(f.path.parent.parent)}/*/experiment.json"
            read[key] = read.get(key, 0) + f.rows
        else:
            read[_short(f.path)] = f.rows
    lines = [(name, str(rows), "") for name, rows in read.items()]
    for (name, why), paths in skipped.items():
        shown = _short(paths[0]) if len(paths) == 1 else f"{name} ({len(paths)} files)"
        lines.append((shown, "-", f"skipped: {why}"))
    width = max([len(name) for name, _, _ in lines] + [4])
    typer.echo(f"{'file':<{width}}  {'rows':>5}  note".rstrip())
    for name, rows, note in lines:
        typer.echo(f"{name:<{width}}  {rows:>5}  {note}".rstrip())
    kinds: dict[str, int] = {}
    for dup in result.duplicates:
        kind = _reason_kind(dup.reason)
        kinds[kind] = kinds.get(kind, 0) + 1
    why = "; ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    typer.echo(
        f"runs: {len(result.imported)} added, {len(result.updated)} described further, "
        f"{len(result.already_present)} unchanged; "
        f"{len(result.duplicates)} duplicate description(s) merged" + (f" ({why})" if why else "")
    )
    typer.echo(f"timestamps read as {result.timezone}, stored in UTC (the text kept)")
    if result.conflicts:
        typer.echo(
            f"{len(result.conflicts)} conflict(s): the first source wins "
            "(experiment.json, then summary.csv, then other CSVs; choose with --prefer)"
        )
        for c in result.conflicts:
            typer.echo(
                f"  {c.run}: {c.field}: kept {c.kept[1]} from {c.kept[0]}; "
                f"not {c.other[1]} from {c.other[0]}"
            )


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
        results_dir: ResultsDir = Path("results"),
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
        timezone: Annotated[
            str | None,
            typer.Option(
                "--timezone",
                help="IANA zone the old tool's local timestamps were written in "
                "(default: this machine's).",
            ),
        ] = None,
        prefer: Annotated[
            list[str] | None,
            typer.Option(
                "--prefer",
                help="Source whose values win when two descriptions of a run disagree: a "
                "file name (raw_data.csv), path ending, or suffix (csv, json); repeatable.",
            ),
        ] = None,
    ) -> None:
        """Import the lab's measured runs into the results database, once."""
        from hyperjoule.legacy import import_legacy

        result = import_legacy(
            sources,
            results_dir,
            study=study,
            targets=targets,
            timezone=timezone,
            prefer=prefer or (),
        )
        _report(result.warnings)
        _import_table(result)
        typer.echo(
            f"imported {len(result.imported)} run(s) into study {result.study!r} "
            f"({result.database}); {len(result.already_present)} already there, "
            f"{result.merged_rows} duplicate description(s) merged"
        )
