"""One runner per study: an advisory file lock in the study's results directory.

``flock`` locks belong to the open file, so the kernel drops them when the holder dies
in any way, SIGKILL included: a crashed runner never leaves a stale lock behind.
Different studies lock different files and may run side by side.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from hyperjoule.errors import StorageError

__all__ = ["LOCK_FILENAME", "StudyBusyError", "StudyLock"]

LOCK_FILENAME = "study.lock"


class StudyBusyError(StorageError):
    """Another runner holds the study."""


class StudyLock:
    """Exclusive lock on ``<results_dir>/<study>/study.lock`` while a study runs."""

    def __init__(self, results_dir: Path, study: str) -> None:
        self.path = results_dir / study / LOCK_FILENAME
        self.study = study
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or fail at once.

        Raises:
            StudyBusyError: Another process runs this study now.
            StorageError: The lock file cannot be created.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        except OSError as e:
            raise StorageError(f"{self.path}: cannot create the study lock: {e.strerror}") from e
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StudyBusyError(
                f"{self.path}: study {self.study!r} is already running ({holder}); "
                "wait for it to finish or stop it, or use another --results-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Release the lock (idempotent)."""
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
