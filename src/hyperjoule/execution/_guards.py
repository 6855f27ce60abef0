"""What keeps a long study safe: results-directory checks, the heartbeat, the study claim."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from pathlib import Path

from hyperjoule.config import LoadedStudy
from hyperjoule.errors import PreflightError, StorageError
from hyperjoule.storage import ResultsStore, StudyBusyError

__all__ = [
    "HEARTBEAT_PERIOD_S",
    "MIN_FREE_BYTES",
    "STALE_AFTER_S",
    "Heartbeat",
    "check_results_dir",
    "refuse_live_sessions",
]

logger = logging.getLogger(__name__)

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space a results directory needs before a study starts (logs, records, CSV)."""

HEARTBEAT_PERIOD_S = 5.0
"""How often a running session refreshes its heartbeat."""

STALE_AFTER_S = 60.0
"""A session whose heartbeat is older than this is considered dead."""


def _existing_ancestor(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_results_dir(results_dir: Path, *, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Refuse a results directory that cannot take a study, before any training starts.

    Raises:
        PreflightError: Not a directory, not writable, or too little free space.
    """
    if results_dir.exists() and not results_dir.is_dir():
        raise PreflightError(
            f"{results_dir}: --results-dir is a file, not a directory; pass a directory"
        )
    base = _existing_ancestor(results_dir)
    if not os.access(base, os.W_OK | os.X_OK):
        raise PreflightError(
            f"{base}: not writable by this user (uid {os.getuid()}); fix its permissions "
            "(hyperjoule never needs sudo) or pass another --results-dir"
        )
    free = shutil.disk_usage(base).free
    if free < min_free_bytes:
        raise PreflightError(
            f"{base}: only {free / 2**20:.0f} MiB free, a study needs at least "
            f"{min_free_bytes / 2**20:.0f} MiB; free some space or pass another --results-dir"
        )


def refuse_live_sessions(store: ResultsStore, study: str) -> None:
    """Refuse to start while another host's runner still beats for this study.

    The caller holds the study lock, so sessions of this host that are still marked
    running are dead; a fresh heartbeat from another host (a shared results directory
    where file locks may not reach) means the study runs there.

    Raises:
        StudyBusyError: A live session of the study exists on another host.
    """
    host = socket.gethostname()
    for live in store.live_sessions(study, stale_after_s=STALE_AFTER_S):
        if live["host"] != host:
            raise StudyBusyError(
                f"{store.path}: study {study!r} is running on {live['host']} "
                f"(pid {live['pid']}, heartbeat {live['heartbeat_age_s']:.0f} s ago); "
                f"wait for it, or {STALE_AFTER_S:.0f} s after it stopped run again"
            )


class Heartbeat:
    """Refreshes a session's heartbeat from a thread with its own database connection."""

    def __init__(self, results_dir: Path, session: str, period_s: float = HEARTBEAT_PERIOD_S):
        self._results_dir = results_dir
        self._session = session
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="hyperjoule-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            store = ResultsStore(self._results_dir, create=False)
        except StorageError as e:
            logger.warning("heartbeat disabled: %s", e)
            return
        with store:
            while not self._stop.wait(self._period_s):
                try:
                    store.heartbeat(self._session)
                except StorageError as e:  # a busy or full disk must not stop the study
                    logger.warning("heartbeat not recorded: %s", e)


def check_assets(loaded: LoadedStudy) -> None:
    """Refuse a study whose targets' declared assets are missing.

    Raises:
        PreflightError: Lists every missing asset with its target.
    """
    used = loaded.used_targets()
    missing = [
        f"{name}: {asset}"
        for name in used
        for asset in loaded.targets[name].assets
        if not (loaded.targets[name].workdir / Path(asset).expanduser()).exists()
    ]
    if missing:
        raise PreflightError(
            f"{loaded.targets_path}: declared assets are missing (needed offline): "
            + "; ".join(missing)
            + "; put them in place or remove them from 'assets'"
        )
