"""Options shared by several commands, defined once so their flags and help agree.

Also the state of the global ``--debug`` flag, which every command may consult.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "RerunOption",
    "ResultsDir",
    "StudyFile",
    "StudyOption",
    "debug_enabled",
    "set_debug",
]

_DEBUG = {"on": False}


def debug_enabled() -> bool:
    """Whether ``--debug`` was given (tracebacks and debug logs wanted)."""
    return _DEBUG["on"]


def set_debug(on: bool) -> None:
    """Record whether ``--debug`` was given."""
    _DEBUG["on"] = on


ResultsDir = Annotated[
    Path,
    typer.Option(
        "--results-dir",
        help="Results directory (database and run records), relative to the current directory.",
    ),
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
