"""Options shared by several commands, defined once so their flags and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ResultsDir", "RerunOption", "StudyFile", "StudyOption"]

ResultsDir = Annotated[
    Path, typer.Option("--results-dir", help="Results directory (database and run records).")
]
StudyFile = Annotated[Path, typer.Argument(help="Study file (YAML or JSON).")]
StudyOption = Annotated[
    str | None, typer.Option("--study", help="Only this study (default: every study).")
]
RerunOption = Annotated[
    str | None,
    typer.Option(
        "--rerun",
        help="Run again the slots whose final status is in this list "
        "(e.g. failed,timeout,oom,metrics_missing); earlier records are kept.",
    ),
]
