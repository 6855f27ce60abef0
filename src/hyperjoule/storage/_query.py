"""Reading stored runs for analysis: chosen JSON values of every record, straight from SQLite.

The report asks for values by JSON path (``$.energy.total_j``); SQLite parses every record
once, in C, and returns just these values as one small JSON array, so Python never parses
the provenance and logs a record also holds (about a fifth of the text). This module is
the report's only way into the database.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from hyperjoule.errors import StorageError
from hyperjoule.storage._filter import RunFilter
from hyperjoule.storage._schema import DB_FILENAME, connect_readonly

__all__ = [
    "RecordValues",
    "attempt_values",
    "count_stored_runs",
    "no_gc",
    "read_record_values",
    "stored_studies",
]

INLINE_ATTEMPTS = 3
"""Attempts read in the main query; runs with more get their log in a second one."""


class RecordValues(NamedTuple):
    """Values read from run records, oldest run first."""

    rows: list[list[Any]]
    """Per run, the values at the asked JSON paths, in their order (None where absent)."""
    attempts: list[list[list[Any]]]
    """Per run, per entry of its ``attempt_log``, the asked fields' values in order."""


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


def attempt_values(log: Any, fields: Sequence[str]) -> list[list[Any]]:
    """The ``fields`` of every entry of an attempt log (``[]`` when it is not a list)."""
    if not isinstance(log, list):
        return []
    return [[a.get(f) for f in fields] for a in log if isinstance(a, Mapping)]


def stored_studies(path: Path) -> list[str]:
    """The names of the studies with runs in the database at ``path``, sorted.

    Raises:
        StorageError: The database cannot be read.
    """
    try:
        conn = connect_readonly(path)
        try:
            rows = conn.execute("SELECT DISTINCT study FROM runs ORDER BY study").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot read runs: {e}") from e
    return [str(r[0]) for r in rows]


def count_stored_runs(results_dir: Path | str, study: str | None = None) -> int:
    """How many runs (of ``study``) the results database holds; 0 when it cannot be read."""
    path = Path(results_dir) / DB_FILENAME
    if not path.is_file():
        return 0
    try:
        conn = connect_readonly(path)
        try:
            sql = "SELECT count(*) FROM runs" + (" WHERE study = ?" if study else "")
            row = conn.execute(sql, (study,) if study else ()).fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, StorageError):
        return 0  # reading the runs themselves reports the problem properly
    return int(row[0])


def _query(
    paths: Sequence[str], fields: Sequence[str], runs: RunFilter, part: int, parts: int
) -> tuple[str, list[Any]]:
    inline = [f"$.attempt_log[{k}].{f}" for k in range(INLINE_ATTEMPTS) for f in fields]
    params: list[Any] = [*paths, *inline]
    marks = ", ".join("?" for _ in params)
    sql = (
        f"SELECT run_id, json_extract(record_json, {marks}), "
        "json_array_length(record_json, '$.attempt_log') FROM runs"
    )
    where, filter_params = runs.clauses()
    params += filter_params
    if parts > 1:
        where.append("rowid % ? = ?")
        params += [parts, part]
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY started_at, run_id", params


def _split(values: list[Any], length: Any, base: int, width: int) -> list[list[Any]]:
    """The inline attempt values at the end of a row, as one list per attempt."""
    count = min(length, INLINE_ATTEMPTS) if isinstance(length, int) else 0
    return [values[base + k * width : base + (k + 1) * width] for k in range(count)]


def _long_logs(
    conn: sqlite3.Connection, run_ids: list[str], fields: Sequence[str]
) -> dict[str, list[list[Any]]]:
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
            out[run_id] = attempt_values(json.loads(text), fields)
    return out


def read_record_values(
    path: Path,
    paths: Sequence[str],
    attempt_fields: Sequence[str],
    *,
    study: str | None = None,
    part: int = 0,
    parts: int = 1,
    runs: RunFilter | None = None,
) -> RecordValues:
    """Read the values at ``paths`` of the stored runs (of ``study``), oldest first.

    Args:
        path: The database file.
        paths: JSON paths into each record (``$.energy.total_j``).
        attempt_fields: Fields of each ``attempt_log`` entry.
        study: Only runs of this study.
        runs: Only the runs this filter keeps (its ``study`` is replaced by ``study``
            when that is given).
        part: With ``parts`` > 1, only the runs whose row id modulo ``parts`` is ``part``
            (so several processes can share the work).
        parts: Into how many parts the runs are split.

    Raises:
        StorageError: The database cannot be read, or a record is not JSON.
    """
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot open results database: {e}") from e
    rows: list[list[Any]] = []
    attempts: list[list[list[Any]]] = []
    base, width = len(paths), len(attempt_fields)
    try:
        chosen = runs or RunFilter()
        if study is not None:
            chosen = replace(chosen, study=study)
        cursor = conn.execute(*_query(paths, attempt_fields, chosen, part, parts))
        loads = json.loads
        long: list[tuple[int, str]] = []
        with no_gc():
            while batch := cursor.fetchmany(4096):
                for run_id, text, length in batch:
                    try:
                        values = loads(text)
                    except (TypeError, ValueError) as e:
                        raise StorageError(f"{path}: run {run_id}: damaged record ({e})") from e
                    if isinstance(length, int) and length > INLINE_ATTEMPTS:
                        long.append((len(rows), run_id))
                    attempts.append(_split(values, length, base, width))
                    del values[base:]
                    rows.append(values)
            if long:
                logs = _long_logs(conn, [run_id for _i, run_id in long], attempt_fields)
                for i, run_id in long:
                    attempts[i] = logs.get(run_id, attempts[i])
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot read runs: {e}{_damaged(conn)}") from e
    finally:
        conn.close()
    return RecordValues(rows, attempts)


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
