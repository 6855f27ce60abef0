"""No orphans: a watchdog that kills the runner's training process groups if it dies.

``PR_SET_PDEATHSIG`` reaches only the direct child; the workers a training script starts
would survive a runner killed with SIGKILL and keep a GPU busy for days (it happened in
the lab). The watchdog is a separate tiny process holding the read end of a pipe: the
kernel closes the write end whatever way the runner dies, and the watchdog then kills
every group still registered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from hyperjoule.execution._proctree import RUNNER_TOKEN

__all__ = ["GroupReaper"]

logger = logging.getLogger(__name__)

_SCRIPT = Path(__file__).with_name("_reaper_main.py")


class GroupReaper:
    """Registers process groups with a watchdog process for the runner's lifetime.

    Use as a context manager around a study; :meth:`track` each training process group
    when it starts and :meth:`untrack` it once it was reaped.

    Args:
        detached: Start the watchdog as a grandchild that is not this process's child.
            Ray kills the child processes of a worker it ends (a dead driver, a forced
            cancel), which would take a child watchdog with it before it could act.
    """

    def __init__(self, *, detached: bool = False) -> None:
        self._proc: subprocess.Popen[str] | None = None
        # Concurrent attempts (--jobs) report groups from their own threads: one line
        # must never interleave with another in the pipe.
        self._lock = threading.Lock()
        self._detached = detached

    def __enter__(self) -> GroupReaper:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the watchdog (its own session, so terminal signals do not reach it)."""
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", str(_SCRIPT), *(["--detach"] if self._detached else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            if self._detached:
                self._proc.wait(timeout=30)  # the launcher forks the watchdog and exits
        except (OSError, subprocess.TimeoutExpired) as e:
            # Runs still stop on timeout and Ctrl-C; only a SIGKILLed runner could orphan.
            logger.warning("cannot start the orphan watchdog (%s); continuing without it", e)
            self._proc = None
            return
        # Daemons that leave their group carry this runner's token in their environment.
        self._send(f"@{RUNNER_TOKEN}")

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.stdin is None:
                return
            try:
                self._proc.stdin.write(line + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                logger.warning("orphan watchdog is gone (%s)", e)
                self._proc = None

    def track(self, pgid: int) -> None:
        """Have the watchdog kill group ``pgid`` should the runner die."""
        self._send(f"+{pgid}")

    def untrack(self, pgid: int) -> None:
        """Forget a group that ended normally."""
        self._send(f"-{pgid}")

    def restore_on_death(self, path: Path, value: str) -> None:
        """Have the watchdog write ``value`` back to ``path`` should the runner die."""
        self._send(f"={path}\t{value}")

    def forget_restore(self, path: Path) -> None:
        """The runner restored ``path`` itself."""
        self._send(f"!{path}")

    def run_on_death(self, key: str, argv: list[str]) -> None:
        """Have the watchdog run ``argv`` should the runner die (a setting no file holds)."""
        self._send(f"^{key}\t{json.dumps(argv)}")

    def forget_on_death(self, key: str) -> None:
        """The runner restored the setting ``key`` itself."""
        self._send(f"~{key}")

    def close(self, *, kill_tracked: bool = False) -> None:
        """Stop the watchdog without killing anything.

        With ``kill_tracked`` the watchdog instead kills every group still registered (and
        restores settings), as when the runner dies.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            assert proc.stdin is not None
            if not kill_tracked:
                proc.stdin.write("exit\n")
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
