"""The results database: one SQLite file (WAL mode), the source of truth for every run.

Every write is its own transaction, committed before the call returns, so a runner that
is killed loses at most the run in flight. Schema and migrations live in ``_schema``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from hyperjoule.errors import StorageError
from hyperjoule.records import RunRecord, RunSpec, RunStatus
from hyperjoule.storage._checkpoint import AttemptCheckpoint, apply_checkpoint
from hyperjoule.storage._filter import RunFilter
from hyperjoule.storage._layout import new_session_id, record_to_json, utc_timestamp
from hyperjoule.storage._schema import (
    DB_FILENAME,
    RUN_COLUMNS,
    open_database,
    open_database_readonly,
    run_row,
    writable,
)

__all__ = ["STALE_RUN_ERROR", "ResultsStore"]

logger = logging.getLogger(__name__)

STALE_RUN_ERROR = "runner stopped before the run finished"
"""The error of a run found ``running`` when its study is run again."""


def _fix_for(error: sqlite3.Error) -> str:
    """How to fix the common environment failures, appended to their message."""
    # Extended codes 13 (SQLITE_FULL) and 8 (SQLITE_READONLY), low byte = primary code.
    code = getattr(error, "sqlite_errorcode", -1) & 0xFF
    text = str(error).lower()
    if code == 13 or "disk is full" in text:
        return "; free space on the results disk and run the study again (finished runs are kept)"
    if code == 8 or "readonly" in text:
        return "; make the results directory writable by this user (no sudo needed)"
    return ""


class ResultsStore:
    """The results database of a results directory (``<results_dir>/hyperjoule.db``).

    Args:
        results_dir: The results directory.
        create: Create the directory and database when missing; with False a missing
            database is an error (commands that only read), and a database this process
            cannot write is opened read-only (``read_only`` is then True).

    Raises:
        StorageError: The database is missing (``create=False``), damaged, not SQLite,
            or written by a newer hyperjoule.
    """

    def __init__(self, results_dir: Path, *, create: bool = True) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / DB_FILENAME
        if not self.path.is_file():
            if not create:
                raise StorageError(
                    f"{self.results_dir}: no results database ({DB_FILENAME}); "
                    "run a study first or pass --results-dir"
                )
            try:
                self.results_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(
                    f"{self.results_dir}: cannot create results directory: {e}"
                ) from e
        # Reading commands work on archives too: a read-only mount or directory.
        self.read_only = not create and not writable(self.path)
        if self.read_only:
            self._conn = open_database_readonly(self.path)
        else:
            self._conn = open_database(self.path)
        self._held = False  # inside a reserve() block: writes join its transaction

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Translate SQLite errors into a StorageError naming the file and the action."""
        try:
            yield
        except sqlite3.Error as e:
            raise StorageError(f"{self.path}: cannot {action}: {e}{_fix_for(e)}") from e

    @contextmanager
    def reserve(self, action: str) -> Iterator[None]:
        """Hold the database's write lock for the whole block (one ``BEGIN IMMEDIATE``).

        Reads and writes in the block see and change the database as one atomic step:
        two processes planning studies into one results directory take turns, so the
        second sees the plan the first saved (see :meth:`reserved_keys`).
        """
        with self._transaction(action):
            self._held = True
            try:
                yield
            finally:
                self._held = False

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends (or the enclosing one's)."""
        if self._held:
            with self._guard(action):
                yield self._conn
            return
        with self._guard(action):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _decode(self, run_id: str, text: str) -> RunRecord:
        try:
            return RunRecord.from_dict(json.loads(text))
        except (KeyError, TypeError, ValueError) as e:
            raise StorageError(f"{self.path}: run {run_id}: damaged record ({e})") from e

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plans and sessions ----------------------------------------------------------------

    def save_plan(self, study: str, config_hash: str, specs: list[RunSpec]) -> None:
        """Store (or replace) the plan of a study with the hash of the files it came from."""
        specs_json = json.dumps([s.to_dict() for s in specs])
        with self._transaction(f"save the plan of study {study!r}") as conn:
            conn.execute(
                "INSERT INTO plans (study, config_hash, specs_json, saved_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(study) DO UPDATE SET config_hash = excluded.config_hash, "
                "specs_json = excluded.specs_json, saved_at = excluded.saved_at",
                (study, config_hash, specs_json, utc_timestamp()),
            )

    def load_plan(self, study: str) -> tuple[str, list[RunSpec]] | None:
        """Return ``(config_hash, specs)`` of a study's stored plan, or None."""
        with self._guard(f"read the plan of study {study!r}"):
            row = self._conn.execute(
                "SELECT config_hash, specs_json FROM plans WHERE study = ?", (study,)
            ).fetchone()
        if row is None:
            return None
        try:
            specs = [RunSpec.from_dict(d) for d in json.loads(row[1])]
        except (KeyError, TypeError, ValueError) as e:
            raise StorageError(
                f"{self.path}: stored plan of study {study!r} is damaged ({e})"
            ) from e
        return str(row[0]), specs

    def begin_session(self, study: str, *, config: dict[str, Any]) -> str:
        """Record the start of a session of ``study`` and return its new id."""
        session = new_session_id()
        with self._transaction(f"start a session of study {study!r}") as conn:
            conn.execute(
                "INSERT INTO sessions (session, study, started_at, ended_at, status, config_json, "
                "heartbeat_at, pid, host) VALUES (?, ?, ?, NULL, 'running', ?, ?, ?, ?)",
                (
                    session,
                    study,
                    utc_timestamp(),
                    json.dumps(config, default=str, sort_keys=True),
                    time.time(),
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
        return session

    def heartbeat(self, session: str) -> None:
        """Say that ``session``'s runner is alive (called every few seconds while it runs)."""
        with self._transaction(f"record the heartbeat of session {session}") as conn:
            conn.execute(
                "UPDATE sessions SET heartbeat_at = ? WHERE session = ?", (time.time(), session)
            )

    def live_sessions(self, study: str, *, stale_after_s: float) -> list[dict[str, Any]]:
        """Sessions of ``study`` still marked running whose heartbeat is recent.

        A runner on this host that holds no study lock is dead whatever its heartbeat
        says; the caller decides that (see :class:`StudyLock`). Returned dicts have
        ``session``, ``host``, ``pid`` and ``heartbeat_age_s``.
        """
        with self._guard(f"read the sessions of study {study!r}"):
            rows = self._conn.execute(
                "SELECT session, host, pid, heartbeat_at FROM sessions "
                "WHERE study = ? AND status = 'running' AND ended_at IS NULL "
                "AND heartbeat_at IS NOT NULL",
                (study,),
            ).fetchall()
        now = time.time()
        return [
            {"session": s, "host": h, "pid": p, "heartbeat_age_s": now - float(t)}
            for s, h, p, t in rows
            if now - float(t) < stale_after_s
        ]

    def end_session(self, session: str, status: str) -> None:
        """Record the end of a session (``completed``, ``interrupted``, ``failed``)."""
        with self._transaction(f"end session {session}") as conn:
            cursor = conn.execute(
                "UPDATE sessions SET ended_at = ?, status = ? WHERE session = ?",
                (utc_timestamp(), status, session),
            )
            if cursor.rowcount == 0:
                raise StorageError(f"{self.path}: cannot end session {session}: no such session")

    # -- runs ------------------------------------------------------------------------------

    def insert_run(self, record: RunRecord) -> None:
        """Record a new run (usually still ``running``); its run_id must be new."""
        placeholders = ", ".join("?" for _ in RUN_COLUMNS)
        with self._transaction(f"record run {record.run_id}") as conn:
            conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})",
                run_row(record),
            )

    def update_run(self, record: RunRecord) -> None:
        """Replace the stored record of a run.

        Raises:
            StorageError: No run with this run_id is stored.
        """
        assignments = ", ".join(f"{c} = ?" for c in RUN_COLUMNS[1:])
        row = run_row(record)
        with self._transaction(f"update run {record.run_id}") as conn:
            cursor = conn.execute(
                f"UPDATE runs SET {assignments} WHERE run_id = ?", (*row[1:], row[0])
            )
            if cursor.rowcount == 0:
                raise StorageError(f"{self.path}: cannot update run {record.run_id}: no such run")

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return the record of a run, or None."""
        with self._guard(f"read run {run_id}"):
            row = self._conn.execute(
                "SELECT record_json FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else self._decode(run_id, row[0])

    def iter_runs(
        self,
        study: str | None = None,
        session: str | None = None,
        *,
        run_id_prefix: str | None = None,
        modes: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        since: str | None = None,
    ) -> Iterator[RunRecord]:
        """Yield stored records, oldest first (by started_at, then run_id).

        Every filter is applied in SQL, so the records it leaves out are never decoded.

        Args:
            study: Only runs of this study.
            session: Only runs of this session.
            run_id_prefix: Only runs whose id starts with this (``legacy-``: imported
                runs).
            modes: Only runs of these modes (``search``).
            statuses: Only runs with one of these statuses (``failed``).
            targets: Only runs of these targets.
            models: Only runs of these models.
            since: Only runs started at or after this ISO 8601 UTC timestamp (the form
                :func:`~hyperjoule.storage.utc_timestamp` writes).
        """
        where, params = RunFilter(
            study=study,
            statuses=statuses,
            targets=targets,
            models=models,
            modes=modes,
            since=since,
        ).clauses()
        if session is not None:
            where.append("session = ?")
            params.append(session)
        if run_id_prefix is not None:
            where.append("substr(run_id, 1, ?) = ?")
            params += [len(run_id_prefix), run_id_prefix]
        sql = "SELECT run_id, record_json FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, run_id"
        with self._guard("read runs"):
            cursor = self._conn.execute(sql, params)
        return self._iter_cursor(cursor)

    def _iter_cursor(self, cursor: sqlite3.Cursor) -> Iterator[RunRecord]:
        while True:
            with self._guard("read runs"):
                rows = cursor.fetchmany(256)
            if not rows:
                return
            for run_id, text in rows:
                yield self._decode(run_id, text)

    def finished_slots(self, study: str) -> set[tuple[str, str]]:
        """Return ``(slot_id, dedup_key)`` of the runs of ``study`` that finished for good."""
        with self._guard(f"read runs of study {study!r}"):
            rows = self._conn.execute(
                "SELECT slot_id, dedup_key, status FROM runs WHERE study = ?", (study,)
            ).fetchall()
        return {(slot, key) for slot, key, status in rows if RunStatus(status).finished}

    def measured_keys(self, target: str, model: str | None) -> set[str]:
        """Return the dedup keys of finished runs of ``target``/``model`` in any study."""
        with self._guard(f"read runs of {target}"):
            rows = self._conn.execute(
                "SELECT dedup_key, status FROM runs WHERE target = ? AND model IS ?",
                (target, model),
            ).fetchall()
        return {key for key, status in rows if RunStatus(status).finished}

    def reserved_keys(self, target: str, model: str | None, *, besides: str) -> set[str]:
        """Dedup keys of ``target``/``model`` planned by studies other than ``besides``.

        A stored plan reserves its configurations: a mutation planned by another study
        is not planned again, even before it ran. Read inside :meth:`reserve` so that
        the reservation and the new plan are one transaction.
        """
        with self._guard(f"read the plans of {target}"):
            rows = self._conn.execute(
                "SELECT specs_json FROM plans WHERE study != ?", (besides,)
            ).fetchall()
        keys: set[str] = set()
        for (text,) in rows:
            try:
                specs = json.loads(text)
            except ValueError as e:
                raise StorageError(f"{self.path}: a stored plan is damaged ({e})") from e
            for spec in specs if isinstance(specs, list) else []:
                if spec.get("target") == target and spec.get("model") == model:
                    keys.add(str(spec.get("dedup_key")))
        return keys

    def durations_s(self, target: str, model: str | None) -> list[float]:
        """Return the durations in seconds of succeeded runs of ``target``/``model``."""
        with self._guard(f"read runs of {target}"):
            rows = self._conn.execute(
                "SELECT duration_s FROM runs WHERE target = ? AND model IS ? AND status = ? "
                "AND duration_s IS NOT NULL ORDER BY started_at, run_id",
                (target, model, RunStatus.SUCCEEDED.value),
            ).fetchall()
        return [float(r[0]) for r in rows]

    def checkpoint_run(self, run_id: str, checkpoint: AttemptCheckpoint) -> None:
        """Store a running attempt's accounting so far (a small in-place JSON update)."""
        with self._transaction(f"checkpoint run {run_id}") as conn:
            conn.execute(
                "UPDATE runs SET record_json = json_set(record_json, '$.checkpoint', json(?)) "
                "WHERE run_id = ? AND status = ?",
                (json.dumps(checkpoint.to_dict()), run_id, RunStatus.RUNNING.value),
            )

    def mark_stale_running(self, study: str) -> list[RunRecord]:
        """Turn runs of ``study`` left ``running`` by a killed runner into ``interrupted``.

        A run with a checkpoint keeps the duration, CPU time and (partial) energy of its
        last one, and that attempt joins ``attempt_log``. Sessions of the study still
        marked running are marked interrupted too. Call only when no other runner works
        on the study.

        Returns:
            The records changed, as stored now (their ``run.json`` and ``summary.csv``
            row are the caller's to write: the runner that would have was killed).
        """
        changed: list[RunRecord] = []
        with self._transaction(f"mark stale runs of study {study!r}") as conn:
            rows = conn.execute(
                "SELECT run_id, record_json FROM runs WHERE study = ? AND status = ?",
                (study, RunStatus.RUNNING.value),
            ).fetchall()
            for run_id, text in rows:
                record = self._decode(run_id, text)
                record.status = RunStatus.INTERRUPTED
                record.error = STALE_RUN_ERROR
                checkpoint = json.loads(text).get("checkpoint")
                if isinstance(checkpoint, dict):
                    try:
                        loaded = AttemptCheckpoint.from_dict(checkpoint)
                    except (KeyError, TypeError, ValueError) as e:
                        logger.warning("run %s: unreadable checkpoint ignored (%s)", run_id, e)
                    else:
                        apply_checkpoint(record, loaded, STALE_RUN_ERROR)
                conn.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, duration_s = ?, "
                    "energy_total_j = ?, record_json = ? WHERE run_id = ?",
                    (
                        record.status.value,
                        record.ended_at,
                        record.duration_s,
                        record.energy.total_j,
                        record_to_json(record),
                        run_id,
                    ),
                )
                changed.append(record)
            conn.execute(
                "UPDATE sessions SET status = 'interrupted' "
                "WHERE study = ? AND status = 'running' AND ended_at IS NULL",
                (study,),
            )
        return changed

    def studies(self) -> list[str]:
        """Return the names of every study with a plan, a session or a run, sorted."""
        with self._guard("list studies"):
            rows = self._conn.execute(
                "SELECT study FROM runs UNION SELECT study FROM sessions "
                "UNION SELECT study FROM plans ORDER BY study"
            ).fetchall()
        return [str(r[0]) for r in rows]
