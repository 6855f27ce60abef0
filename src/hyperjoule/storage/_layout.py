"""The results directory on disk: ids, session and run directories, ``run.json``."""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hyperjoule.errors import StorageError
from hyperjoule.records import RunRecord

__all__ = [
    "RUN_JSON",
    "atomic_write_text",
    "new_run_id",
    "new_session_id",
    "read_run_json",
    "record_to_json",
    "run_dir",
    "session_dir",
    "utc_timestamp",
    "write_run_json",
]

logger = logging.getLogger(__name__)


def utc_timestamp() -> str:
    """Now, as the ISO 8601 UTC timestamp (milliseconds) records and the database hold."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


RUN_JSON = "run.json"
"""File name of the full record inside a run directory."""


def _new_id(prefix: str) -> str:
    # The UTC timestamp first makes ids sort by creation time; the random suffix makes
    # them unique across processes and machines without any coordination.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}{stamp}-{secrets.token_hex(4)}"


def new_run_id() -> str:
    """Return a new globally unique run id that sorts by time (``r20250101T120000-1a2b3c4d``)."""
    return _new_id("r")


def new_session_id() -> str:
    """Return a new globally unique session id that sorts by time (``s20250101T120000-…``)."""
    return _new_id("s")


def path_component(kind: str, name: str) -> str:
    """Return ``name`` when it is one safe directory name; refuse one that would escape."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise StorageError(
            f"{kind} name {name!r} cannot be used as a directory name; "
            "use letters, digits, '-', '_' or '.'"
        )
    return name


def session_dir(results_dir: Path, study: str, session: str) -> Path:
    """Return ``results_dir/<study>/<session>``, where a session's summary and runs live."""
    return Path(results_dir) / path_component("study", study) / path_component("session", session)


def run_dir(results_dir: Path, study: str, session: str, run_id: str) -> Path:
    """Return ``results_dir/<study>/<session>/<run_id>``, the directory of one run."""
    return session_dir(results_dir, study, session) / path_component("run", run_id)


def record_to_json(record: RunRecord, *, indent: int | None = None) -> str:
    """Serialise a record as ``run.json`` and the database hold it."""
    # default=str: provenance may carry paths or other plain objects; they are kept as text
    # rather than failing the write of a run that already happened.
    return json.dumps(record.to_dict(), indent=indent, default=str)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: temp file in the same directory, fsync, rename.

    Readers see either the old or the new file, never a partial one.

    Raises:
        StorageError: The file cannot be written.
    """
    path = Path(path)
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # mkstemp makes 0600; the file gets the mode of the logs and the database instead.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as e:
        raise StorageError(f"{path}: cannot write: {e}") from e
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def write_run_json(directory: Path, record: RunRecord) -> Path:
    """Write ``record`` atomically to ``directory/run.json`` and return that path.

    Raises:
        StorageError: The file cannot be written.
    """
    path = Path(directory) / RUN_JSON
    atomic_write_text(path, record_to_json(record, indent=2) + "\n")
    logger.debug("wrote %s", path)
    return path


def read_run_json(path: Path) -> RunRecord:
    """Read a record written by :func:`write_run_json`.

    Args:
        path: The ``run.json`` file, or the run directory holding it.

    Raises:
        StorageError: The file is missing, not JSON, or not a run record.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RUN_JSON
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise StorageError(f"{path}: cannot read run record: {e}") from e
    except ValueError as e:
        raise StorageError(f"{path}: not valid JSON ({e}); the run record is damaged") from e
    try:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        return RunRecord.from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise StorageError(f"{path}: not a hyperjoule run record ({e})") from e
