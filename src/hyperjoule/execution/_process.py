"""Launching one training process: own process group, streamed log, timeout, clean kill.

The child never runs through a shell: ``argv`` is executed as given. It leads a new
process group (``start_new_session``) so that a timeout or Ctrl-C kills the whole tree a
training script may spawn (data-loader workers, ``torchrun`` children), and on Linux it
gets ``PR_SET_PDEATHSIG`` so it dies even if the runner itself is killed with SIGKILL.
Output goes straight to ``attempt-N.log``: nothing is held in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hyperjoule.execution._proctree import (
    RUN_TOKEN_ENV,
    EscapedProcess,
    children_now,
    end_leftovers,
    escape_watch,
    forget_child,
    launching,
    new_run_token,
    register_child,
    tree_cpu_time_s,
)
from hyperjoule.execution._reaper_main import group_alive

__all__ = ["ProcessResult", "kill_process_group", "run_process"]

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessResult:
    """How one process ended.

    Attributes:
        exit_code: Exit status; None when the process was ended by a signal.
        signal: Number of the signal that ended it, or None.
        timed_out: True when hyperjoule killed it at the target's ``timeout_s``.
        interrupted: True when hyperjoule killed it because the study was stopped.
        duration_s: Wall time from start to exit.
        cpu_time_s: User + system CPU time of the process and the children it waited
            for; None when the platform does not report it.
        max_rss_bytes: Peak resident set size of the largest process reported, or None.
        log_path: The file holding its stdout and stderr.
        pid: Process id (and process group id) of the child; 0 when it never started.
        stopped_early: True when hyperjoule killed it because ``should_stop`` said so
            (a search pruned it).
        escaped: Processes of the run still alive after its process ended (daemons that
            left its session, leftovers of its group); all were killed.
        leftover_cpu_time_s: CPU time of the processes left behind, in seconds
            (included in ``cpu_time_s``).
        escape_watch: How left-behind processes were looked for.
    """

    exit_code: int | None
    signal: int | None
    timed_out: bool
    interrupted: bool
    duration_s: float
    cpu_time_s: float | None
    max_rss_bytes: int | None
    log_path: Path
    pid: int = 0
    stopped_early: bool = False
    escaped: tuple[EscapedProcess, ...] = ()
    leftover_cpu_time_s: float = 0.0
    escape_watch: str = ""


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded in the parent: between fork and exec the child must not look for libraries.
_LIBC = _load_libc()


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_process_group(pgid: int, grace_s: float = 5.0) -> None:
    """End every process of a group: SIGTERM, ``grace_s`` to exit, then SIGKILL.

    Zombies of the group (already exited, not yet reaped by their parent) count as
    gone once SIGKILL was sent.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout_s: float | None = None,
    grace_s: float = 5.0,
    stop_event: threading.Event | None = None,
    on_start: Callable[[int], None] | None = None,
    poll_interval_s: float = 0.05,
    should_stop: Callable[[], bool] | None = None,
    run_token: str | None = None,
    on_progress: Callable[[float, float | None], None] | None = None,
    progress_every_s: float = 5.0,
    first_progress_s: float | None = None,
) -> ProcessResult:
    """Run ``argv`` in its own process group with output streamed to ``log_path``.

    Args:
        argv: Program and arguments (no shell).
        cwd: Working directory.
        env: The complete environment of the child.
        log_path: File receiving stdout and stderr (created or truncated).
        timeout_s: Kill the whole group after this many seconds (None: no limit).
        grace_s: Seconds between SIGTERM and SIGKILL.
        stop_event: When set, the group is killed and the result marked interrupted.
        on_start: Called with the child's pid (which is also its process group id).
        poll_interval_s: How often the timeout and the stop event are checked.
        should_stop: Polled as often; when it returns True the group is killed and the
            result marked ``stopped_early`` (a pruned search trial).
        run_token: Put in the child's environment as ``HYPERJOULE_RUN_TOKEN`` to find
            its descendants later, even daemons; a new one by default.
        on_progress: Called every ``progress_every_s`` while the process runs with its
            duration so far and the CPU time so far of its processes (seconds; None when
            unknown), so a caller can checkpoint what a killed runner would lose.
        progress_every_s: Period of ``on_progress``, in seconds.
        first_progress_s: When the first ``on_progress`` comes (default: one period),
            so a short-lived attempt is known to have run.

    Returns:
        The outcome. A program that cannot be started is reported as exit code 127
        with the reason written to the log, like a shell would; with ``stop_event``
        already set nothing is started and the result is ``interrupted``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    token = run_token or new_run_token()
    known = children_now()
    start = time.monotonic()
    with open(log_path, "wb", buffering=0) as log:
        if stop_event is not None and stop_event.is_set():
            # Stopped while waiting to start (e.g. Ctrl-C during a background warm-up):
            # nothing is launched, and the attempt is interrupted, not run.
            log.write(b"hyperjoule: not started: the study was being stopped\n")
            return ProcessResult(None, None, False, True, 0.0, None, None, log_path)
        try:
            with launching():
                proc = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env={**env, RUN_TOKEN_ENV: token},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_set_pdeathsig if _LIBC is not None else None,
                )
                register_child(proc.pid, locked=True)
        except OSError as e:
            log.write(f"hyperjoule: cannot start {argv[0]!r}: {e}\n".encode())
            return ProcessResult(127, None, False, False, 0.0, None, None, log_path)
        if on_start is not None:
            on_start(proc.pid)
        next_progress = start + (progress_every_s if first_progress_s is None else first_progress_s)
        timed_out = interrupted = stopped_early = False
        status: int | None = None
        rusage = None
        exited = _ExitWaiter(proc.pid)
        while status is None:
            pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                status, rusage = wait_status, usage
                break
            elapsed_s = time.monotonic() - start
            if timeout_s is not None and elapsed_s >= timeout_s and not (timed_out or interrupted):
                timed_out = True
                logger.info(
                    "pid %d passed its timeout of %.0f s: killing its group", proc.pid, timeout_s
                )
                _kill_in_background(proc.pid, grace_s)
            elif stop_event is not None and stop_event.is_set() and not (timed_out or interrupted):
                interrupted = True
                _kill_in_background(proc.pid, grace_s)
            elif (
                should_stop is not None
                and not (timed_out or interrupted or stopped_early)
                and should_stop()
            ):
                stopped_early = True
                _kill_in_background(proc.pid, grace_s)
            if on_progress is not None and time.monotonic() >= next_progress:
                on_progress(time.monotonic() - start, tree_cpu_time_s(proc.pid, token))
                next_progress = time.monotonic() + progress_every_s
            exited(poll_interval_s)
        duration_s = time.monotonic() - start
        forget_child(proc.pid)
        # Children the script left behind (daemons, detached workers) die with the run.
        if group_alive(proc.pid):
            kill_process_group(proc.pid, grace_s=min(grace_s, 1.0))
        left = end_leftovers(proc.pid, token, grace_s=min(grace_s, 1.0), known=known)
        for gone in left.escaped:
            logger.warning(
                "run process %d left %s (pid %d, found by %s) behind: killed",
                proc.pid,
                gone.name,
                gone.pid,
                gone.found_by,
            )
        exited.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
    exit_code: int | None = None
    sig: int | None = None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    else:
        exit_code = os.WEXITSTATUS(status)
    cpu_time_s = None
    if rusage is not None:
        cpu_time_s = rusage.ru_utime + rusage.ru_stime + left.cpu_time_s
    # ru_maxrss is in KiB on Linux.
    max_rss = int(rusage.ru_maxrss) * 1024 if rusage is not None else None
    return ProcessResult(
        exit_code,
        sig,
        timed_out,
        interrupted,
        duration_s,
        cpu_time_s,
        max_rss,
        log_path,
        proc.pid,
        stopped_early,
        escaped=left.escaped,
        leftover_cpu_time_s=left.cpu_time_s,
        escape_watch=escape_watch(),
    )


class _ExitWaiter:
    """Sleeps up to a timeout, waking at once when the process exits (a pidfd on Linux).

    Polling with a plain sleep notices an exit up to a whole period late; with many
    short runs that delay is the runner's overhead.
    """

    def __init__(self, pid: int) -> None:
        self._fd: int | None = None
        opener = getattr(os, "pidfd_open", None)
        if opener is not None:
            try:
                self._fd = opener(pid)
            except OSError:
                self._fd = None  # old kernel or no permission: plain sleeps

    def __call__(self, timeout_s: float) -> None:
        if self._fd is None:
            time.sleep(timeout_s)
            return
        try:
            select.select([self._fd], [], [], timeout_s)
        except (OSError, ValueError):
            time.sleep(timeout_s)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _kill_in_background(pgid: int, grace_s: float) -> None:
    """Start the TERM-grace-KILL sequence without blocking the wait loop."""
    threading.Thread(
        target=kill_process_group, args=(pgid, grace_s), name=f"kill-{pgid}", daemon=True
    ).start()
