"""Which values the flat schema needs from run records, read from dicts or the database.

Both paths produce the same thing: per run, the values at :data:`RECORD_PATHS`, and per
attempt the values at :data:`ATTEMPT_FIELDS`. The database is read through
:func:`hyperjoule.storage.read_record_values` (SQLite extracts just these values).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hyperjoule.errors import StorageError
from hyperjoule.records import ENERGY_COMPONENTS
from hyperjoule.report.load._schema import (
    ATTEMPT_FIELDS,
    CARBON_COLUMNS,
    LEADING_COLUMNS,
    POWER_COLUMNS,
)
from hyperjoule.storage import (
    RunFilter,
    attempt_values,
    no_gc,
    read_record_values,
    stored_studies,
)

__all__ = [
    "ATTEMPT_FIELDS",
    "RECORD_PATHS",
    "Extracted",
    "check_study",
    "from_database",
    "from_records",
    "no_gc",
]

# The flat leading columns are record fields of the same name; then the nested maps.
_IDENTITY = (*LEADING_COLUMNS, "hyperparameters", "metrics")
_COMPONENT_FIELDS = (
    "energy_j",
    "net_energy_j",
    "method",
    "attribution",
    "share",
    "devices",
    "reason",
)

RECORD_PATHS: tuple[str, ...] = (
    *(f"$.{k}" for k in _IDENTITY),
    *(f"$.energy.components.{c}.{f}" for c in ENERGY_COMPONENTS for f in _COMPONENT_FIELDS),
    "$.energy.total_j",
    "$.energy.total_method",
    *(f"$.power.{c.removeprefix('power_')}" for c in POWER_COLUMNS),
    "$.background",
    "$.error",
    "$.run_dir",
    "$.metric_goals",
    *(f"$.carbon.{c.removeprefix('carbon_')}" for c in CARBON_COLUMNS),
)
"""What is read from every record, in this order."""

Extracted = tuple[list[list[Any]], list[list[list[Any]]]]
"""Per run its :data:`RECORD_PATHS` values, and per run its attempts' values."""


def _walk(data: Any, path: str) -> Any:
    """The value at a JSON path (``$.energy.total_j``) of a parsed record, else None."""
    for key in path[2:].split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def from_records(records: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]) -> Extracted:
    """Extract from parsed records (``RunRecord.to_dict()`` or ``run.json`` contents)."""
    rows: list[list[Any]] = []
    attempts: list[list[list[Any]]] = []
    for data in records:
        rows.append([_walk(data, p) for p in RECORD_PATHS])
        attempts.append(attempt_values(data.get("attempt_log"), ATTEMPT_FIELDS))
    return rows, attempts


def check_study(path: Path, study: str | None) -> None:
    """Make sure the database holds runs (of ``study``).

    Raises:
        StorageError: It holds none, or none of ``study`` (the message names the others).
    """
    studies = stored_studies(path)
    if not studies:
        raise StorageError(f"{path}: no runs recorded yet; run a study first")
    if study is not None and study not in studies:
        raise StorageError(
            f"{path}: no runs of study {study!r}; studies here: {', '.join(studies)}"
        )


def from_database(
    path: Path,
    study: str | None,
    part: int = 0,
    parts: int = 1,
    runs: RunFilter | None = None,
) -> Extracted:
    """Extract the stored runs (of ``study``), oldest first, through ``storage``.

    Args:
        path: The database file.
        study: Only runs of this study.
        part: With ``parts`` > 1, only the runs whose row id modulo ``parts`` is ``part``.
        parts: Into how many parts the runs are split.
        runs: Only the runs this filter keeps.

    Raises:
        StorageError: The database cannot be read.
    """
    rows, attempts = read_record_values(
        path, RECORD_PATHS, ATTEMPT_FIELDS, study=study, part=part, parts=parts, runs=runs
    )
    return rows, attempts
