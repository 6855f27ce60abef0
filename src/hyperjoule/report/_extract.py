"""Reading the values the flat schema needs out of run records: from dicts or the database.

Both paths produce the same thing: per run, the values at :data:`RECORD_PATHS`, and per
attempt the values at :data:`ATTEMPT_FIELDS`. From the database, SQLite parses every
record once, in C, and returns just these values as one small JSON array, so Python never
parses the provenance and logs a record also holds (about a fifth of the text).
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hyperjoule.errors import StorageError
from hyperjoule.records import ENERGY_COMPONENTS
from hyperjoule.report._schema import CARBON_COLUMNS, LEADING_COLUMNS, POWER_COLUMNS
from hyperjoule.storage._schema import connect_readonly

__all__ = [
    "ATTEMPT_FIELDS",
    "INLINE_ATTEMPTS",
    "RECORD_PATHS",
    "Extracted",
    "check_study",
    "from_database",
    "from_records",
    "no_gc",
]

# The flat leading columns are record fields of the same name; then the nested maps.
_IDENTITY = (*LEADING_COLUMNS, "hyperparameters", "metrics")
_COMPONENT_FIELDS = ("energy_j", "net_energy_j", "method", "attribution", "devices", "reason")

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

ATTEMPT_FIELDS = (
    "attempt",
    "status",
    "exit_code",
    "duration_s",
    "cpu_time_s",
    "energy_total_j",
    "energy_method",
)
"""What is read from every entry of a record's ``attempt_log``, in this order."""

INLINE_ATTEMPTS = 3
"""Attempts read in the main query; runs with more get their log in a second one."""

Extracted = tuple[list[list[Any]], list[list[list[Any]]]]
"""Per run its :data:`RECORD_PATHS` values, and per run its attempts' values."""


def _walk(data: Any, path: str) -> Any:
    """The value at a JSON path (``$.energy.total_j``) of a parsed record, else None."""
    for key in path[2:].split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _attempts(log: Any) -> list[list[Any]]:
    if not isinstance(log, list):
        return []
    return [[a.get(f) for f in ATTEMPT_FIELDS] for a in log if isinstance(a, Mapping)]


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small objects.

    Every object is kept, so collections in between free nothing; they only cost time
    (about half of the parsing time for 100,000 runs).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def from_records(records: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]) -> Extracted:
    """Extract from parsed records (``RunRecord.to_dict()`` or ``run.json`` contents)."""
    rows: list[list[Any]] = []
    attempts: list[list[list[Any]]] = []
    for data in records:
        rows.append([_walk(data, p) for p in RECORD_PATHS])
        attempts.append(_attempts(data.get("attempt_log")))
    return rows, attempts


def _query(study: str | None, part: int, parts: int) -> tuple[str, list[Any]]:
    inline = [f"$.attempt_log[{k}].{f}" for k in range(INLINE_ATTEMPTS) for f in ATTEMPT_FIELDS]
    params: list[Any] = [*RECORD_PATHS, *inline]
    marks = ", ".join("?" for _ in params)
    sql = (
        f"SELECT run_id, json_extract(record_json, {marks}), "
        "json_array_length(record_json, '$.attempt_log') FROM runs"
    )
    where = []
    if study is not None:
        where.append("study = ?")
        params.append(study)
    if parts > 1:
        where.append("rowid % ? = ?")
        params += [parts, part]
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY started_at, run_id", params


def check_study(path: Path, study: str | None) -> None:
    """Make sure the database holds runs (of ``study``).

    Raises:
        StorageError: It holds none, or none of ``study`` (the message names the others).
    """
    try:
        conn = connect_readonly(path)
        try:
            rows = conn.execute("SELECT DISTINCT study FROM runs ORDER BY study").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot read runs: {e}") from e
    studies = [r[0] for r in rows]
    if not studies:
        raise StorageError(f"{path}: no runs recorded yet; run a study first")
    if study is not None and study not in studies:
        raise StorageError(
            f"{path}: no runs of study {study!r}; studies here: {', '.join(studies)}"
        )


def _split(values: list[Any], length: Any) -> list[list[Any]]:
    """The inline attempt values at the end of a row, as one list per attempt."""
    width = len(ATTEMPT_FIELDS)
    base = len(RECORD_PATHS)
    count = min(length, INLINE_ATTEMPTS) if isinstance(length, int) else 0
    return [values[base + k * width : base + (k + 1) * width] for k in range(count)]


def _long_logs(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, list[list[Any]]]:
    """Full attempt logs of the (rare) runs with more than the inline attempts."""
    out: dict[str, list[list[Any]]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        sql = (
            "SELECT run_id, json_extract(record_json, '$.attempt_log') FROM runs "
            f"WHERE run_id IN ({marks})"
        )
        for run_id, text in conn.execute(sql, chunk):
            out[run_id] = _attempts(json.loads(text))
    return out


def from_database(path: Path, study: str | None, part: int = 0, parts: int = 1) -> Extracted:
    """Extract the stored runs (of ``study``), oldest first.

    Args:
        path: The database file.
        study: Only runs of this study.
        part: With ``parts`` > 1, only the runs whose row id modulo ``parts`` is ``part``
            (so several processes can share the work).
        parts: Into how many parts the runs are split.

    Raises:
        StorageError: The database cannot be read.
    """
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot open results database: {e}") from e
    rows: list[list[Any]] = []
    attempts: list[list[list[Any]]] = []
    try:
        cursor = conn.execute(*_query(study, part, parts))
        loads = json.loads
        long: list[tuple[int, str]] = []
        base = len(RECORD_PATHS)
        with no_gc():
            while batch := cursor.fetchmany(4096):
                for run_id, text, length in batch:
                    try:
                        values = loads(text)
                    except (TypeError, ValueError) as e:
                        raise StorageError(f"{path}: run {run_id}: damaged record ({e})") from e
                    if isinstance(length, int) and length > INLINE_ATTEMPTS:
                        long.append((len(rows), run_id))
                    attempts.append(_split(values, length))
                    del values[base:]
                    rows.append(values)
            if long:
                logs = _long_logs(conn, [run_id for _i, run_id in long])
                for i, run_id in long:
                    attempts[i] = logs.get(run_id, attempts[i])
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot read runs: {e}{_damaged(conn)}") from e
    finally:
        conn.close()
    return rows, attempts


def _damaged(conn: sqlite3.Connection) -> str:
    """Name the runs whose stored record is not JSON (SQLite's error names none)."""
    try:
        bad = [
            r[0]
            for r in conn.execute(
                "SELECT run_id FROM runs WHERE json_valid(record_json) = 0 LIMIT 5"
            )
        ]
    except sqlite3.Error:
        return ""
    if not bad:
        return ""
    return f" (damaged record of run {', '.join(bad)}; restore it from its run.json)"
