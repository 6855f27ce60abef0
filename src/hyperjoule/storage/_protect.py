"""Refusing to write an export or a report over something the results depend on."""

from __future__ import annotations

from pathlib import Path

from hyperjoule.errors import StorageError
from hyperjoule.storage._layout import RUN_JSON
from hyperjoule.storage._lock import LOCK_FILENAME
from hyperjoule.storage._schema import DB_FILENAME

__all__ = ["refuse_results_file"]

_DB_FILES = tuple(DB_FILENAME + suffix for suffix in ("", "-wal", "-shm", "-journal"))
_OWN_NAMES = frozenset({*_DB_FILES, "summary.csv", LOCK_FILENAME, RUN_JSON})


def _is_run_dir(directory: Path) -> bool:
    return (directory / RUN_JSON).is_file() or any(directory.glob("attempt-*.log"))


def refuse_results_file(output: Path | str, results_dir: Path | str) -> None:
    """Raise when writing ``output`` could destroy recorded results.

    Refused: the database and its WAL, SHM and journal files (of ``results_dir`` or of
    any results directory, wherever a link leads), hyperjoule's own files, and any path
    inside a run directory.

    Raises:
        StorageError: ``output`` is one of those; nothing was written.
    """
    target = Path(output).resolve()
    results = Path(results_dir).resolve()
    why = ""
    if target in {results / name for name in _DB_FILES}:
        why = "is the results database (or its WAL/SHM file)"
    elif target.name in _OWN_NAMES and (target.parent / DB_FILENAME).exists():
        why = "is a file of a results directory"
    elif target.is_relative_to(results) and target.name in _OWN_NAMES:
        why = "is a file hyperjoule keeps in the results directory"
    else:
        for parent in target.parents:
            if _is_run_dir(parent):
                why = f"is inside the run directory {parent}"
                break
            if parent == results or parent == parent.parent:
                break
    if why:
        raise StorageError(f"{output}: refusing to write there: it {why}; choose another -o path")
