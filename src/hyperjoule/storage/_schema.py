"""The results database's schema, its migrations, and opening a database file.

Schema changes are migrations: ``MIGRATIONS[n]`` takes a database from version ``n`` to
``n + 1``. Opening a database applies the missing ones in one transaction; a database
written by a newer hyperjoule is refused rather than guessed at.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hyperjoule.errors import StorageError
from hyperjoule.records import RunRecord
from hyperjoule.storage._layout import record_to_json

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_FILENAME",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "open_database",
    "run_row",
]

logger = logging.getLogger(__name__)

DB_FILENAME = "hyperjoule.db"
"""File name of the database inside a results directory."""

SCHEMA_VERSION = 2
"""Schema version this code writes; a newer database needs a newer hyperjoule."""

BUSY_TIMEOUT_MS = 30_000
"""How long a write waits for another process's transaction before failing, in ms."""


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """Create the first schema: sessions, plans and runs."""
    conn.execute(
        """CREATE TABLE sessions (
            session TEXT PRIMARY KEY,
            study TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL,
            config_json TEXT NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE plans (
            study TEXT PRIMARY KEY,
            config_hash TEXT NOT NULL,
            specs_json TEXT NOT NULL,
            saved_at TEXT NOT NULL
        )"""
    )
    # record_json holds the full record; the other columns exist only to query by.
    conn.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            study TEXT NOT NULL,
            session TEXT NOT NULL,
            slot_id TEXT NOT NULL,
            target TEXT NOT NULL,
            model TEXT,
            mode TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            duration_s REAL,
            energy_total_j REAL,
            record_json TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX runs_study ON runs (study)")
    conn.execute("CREATE INDEX runs_target_model ON runs (target, model)")
    conn.execute("CREATE INDEX runs_dedup_key ON runs (dedup_key)")
    conn.execute("CREATE INDEX sessions_study ON sessions (study)")


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Add the session heartbeat: who runs a session, and when it last said so."""
    conn.execute("ALTER TABLE sessions ADD COLUMN heartbeat_at REAL")  # Unix time, s
    conn.execute("ALTER TABLE sessions ADD COLUMN pid INTEGER")
    conn.execute("ALTER TABLE sessions ADD COLUMN host TEXT")


Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: Sequence[Migration] = (_migrate_0_to_1, _migrate_1_to_2)
"""``MIGRATIONS[n]`` upgrades a database from schema version ``n`` to ``n + 1``."""

RUN_COLUMNS = (
    "run_id",
    "study",
    "session",
    "slot_id",
    "target",
    "model",
    "mode",
    "dedup_key",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_total_j",
    "record_json",
)
"""Columns of the ``runs`` table, in the order :func:`run_row` fills them."""


def run_row(record: RunRecord) -> tuple[Any, ...]:
    """Return the values of :data:`RUN_COLUMNS` for a record."""
    return (
        record.run_id,
        record.study,
        record.session,
        record.slot_id,
        record.target,
        record.model,
        record.mode,
        record.dedup_key,
        record.status.value,
        record.started_at,
        record.ended_at,
        record.duration_s,
        record.energy.total_j,
        record_to_json(record),
    )


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if missing) a results database in WAL mode, migrated to this schema.

    The connection is in autocommit mode (``isolation_level=None``): callers begin and
    commit their transactions explicitly.

    Raises:
        StorageError: The file is not SQLite, not a hyperjoule database, written by a newer
            hyperjoule, or cannot be upgraded.
    """
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as e:
        raise StorageError(f"{path}: cannot open results database: {e}") from e
    try:
        _configure(conn, path)
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def writable(path: Path) -> bool:
    """Whether ``path`` (the database) and its directory (WAL and SHM files) are writable.

    ``os.access`` also says False on a read-only mount, for root too.
    """
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open a results database for reading only, also on a read-only mount or directory.

    Reading a WAL database needs its ``-shm`` file; where it cannot be created the
    database is opened ``immutable`` (nothing can be writing it there anyway).

    Raises:
        StorageError: The file is not a usable SQLite database.
    """
    queries = ["mode=ro"] if writable(path) else ["mode=ro", "mode=ro&immutable=1"]
    error: sqlite3.Error | None = None
    for query in queries:
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?{query}",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
            )
        except sqlite3.Error as e:
            error = e
            continue
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            conn.close()
            error = e
            continue
        return conn
    raise StorageError(
        f"{path}: not a usable SQLite database ({error}); move the file away "
        "or pass another --results-dir"
    )


def open_database_readonly(path: Path) -> sqlite3.Connection:
    """Open a results database that this process cannot write, for reading.

    Raises:
        StorageError: Not a usable hyperjoule database, or one of an older schema (which
            needs a writable copy to be upgraded), or of a newer one.
    """
    conn = connect_readonly(path)
    try:
        version = _read_version(conn, path)
        if version > SCHEMA_VERSION:
            raise _too_new(path, version)
        if version < SCHEMA_VERSION:
            raise StorageError(
                f"{path}: schema version {version} needs an upgrade, which this read-only "
                "location does not allow; copy the results directory somewhere writable"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        # NORMAL in WAL mode: a commit survives a crash of the process (what a killed
        # runner needs); only a power cut may lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as e:
        raise StorageError(
            f"{path}: not a usable SQLite database ({e}); move the file away "
            "or pass another --results-dir"
        ) from e
    if str(mode).lower() != "wal":
        # e.g. a file system without shared memory; still correct, only less concurrent.
        logger.warning("%s: WAL mode unavailable (journal_mode=%s)", path, mode)


def _read_version(conn: sqlite3.Connection, path: Path) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if has_meta is None:
        others = conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        if others:
            raise StorageError(
                f"{path}: an SQLite database but not a hyperjoule one "
                f"(tables {', '.join(r[0] for r in others)}); move it away or pass "
                "another --results-dir"
            )
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError) as e:
        raise StorageError(f"{path}: invalid schema_version {row[0]!r} in table meta") from e


def _too_new(path: Path, version: int) -> StorageError:
    return StorageError(
        f"{path}: written by a newer hyperjoule (schema version {version}, this one "
        f"reads up to {SCHEMA_VERSION}); upgrade hyperjoule to use it"
    )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    target = SCHEMA_VERSION
    try:
        start = _read_version(conn, path)
        if start > target:
            raise _too_new(path, start)
        if start == target:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated already.
            start = _read_version(conn, path)
            if start > target:
                raise _too_new(path, start)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            for version in range(start, target):
                MIGRATIONS[version](conn)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(target),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        raise StorageError(
            f"{path}: cannot upgrade the results database to schema version {target}: {e}"
        ) from e
    if start > 0:
        logger.info("%s: schema upgraded from version %d to %d", path, start, target)
