"""Every process a run left behind, daemons that escaped its session included.

A training script's process group dies with its run, but a daemon that double-forks and
calls ``setsid()`` leaves the group and the session. Three things find it anyway:

* the runner is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``, Linux): an orphaned
  descendant is re-parented to the runner instead of init, so it stays a child we see
  (and can reap, which gives its CPU time);
* every launch carries a token in its environment (``HYPERJOULE_RUN_TOKEN``) that its
  descendants inherit; ``/proc/<pid>/environ`` shows it even after ``setsid()``;
* ``/proc`` is scanned by process group, session and parent.

The orphan watchdog (``_reaper_main.py``) finds the same tokens when the runner itself
is killed. Without ``/proc`` (not Linux) nothing beyond the process group is found, and
records say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RUNNER_TOKEN",
    "RUN_TOKEN_ENV",
    "EscapedProcess",
    "Leftovers",
    "child_subreaper",
    "children_now",
    "end_leftovers",
    "escape_watch",
    "forget_child",
    "launching",
    "new_run_token",
    "register_child",
    "tree_cpu_time_s",
]

logger = logging.getLogger(__name__)

RUN_TOKEN_ENV = "HYPERJOULE_RUN_TOKEN"
"""Environment variable holding a launch's token, ``<runner token>.<n>``."""

RUNNER_TOKEN = uuid.uuid4().hex
"""This runner process's token: the prefix of every token it hands out."""

_PROC = Path("/proc")
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_counter = itertools.count(1)
_launched: set[int] = set()
# Leftovers being ended, by the marker of the run that claimed them. Two runs ending at
# the same moment would otherwise both claim a daemon whose environment has turned
# unreadable (it is exiting after the first run's SIGTERM), and both would report it.
_claims: dict[int, bytes] = {}
_launched_lock = threading.Lock()


def new_run_token() -> str:
    """A token for one launch; the watchdog recognises every token of this runner."""
    return f"{RUNNER_TOKEN}.{next(_counter)}"


def register_child(pid: int, *, locked: bool = False) -> None:
    """Say that ``pid`` is a child this runner started and waits for itself.

    Args:
        pid: The child.
        locked: The caller holds :func:`launching` already.
    """
    if locked:
        _launched.add(pid)
        return
    with _launched_lock:
        _launched.add(pid)


@contextlib.contextmanager
def launching() -> Iterator[None]:
    """Hold while starting a child and :func:`register_child`-ing it.

    A scan in another thread (a background run ending) then never mistakes the new
    child, already forked but not yet registered, for an orphan handed to us.
    """
    with _launched_lock:
        yield


def forget_child(pid: int) -> None:
    """``pid`` was reaped by its owner."""
    with _launched_lock:
        _launched.discard(pid)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextlib.contextmanager
def child_subreaper() -> Iterator[str | None]:
    """Make this process a child subreaper for the block; restore the previous state.

    Yields:
        None when active, else why not (the scans by token, session and group remain).
    """
    libc = _libc()
    if libc is None:
        why = f"no child subreaper on {sys.platform}"
        logger.warning("%s: a daemon a run leaves behind is found only by /proc scans", why)
        yield why
        return
    previous = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        why = f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(ctypes.get_errno())}"
        logger.warning("%s; daemons left by runs are found only by /proc scans", why)
        yield why
        return
    try:
        yield None
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)


def escape_watch() -> str:
    """How this runner finds escaped processes now (recorded with every attempt)."""
    libc = _libc()
    if libc is None or not _PROC.is_dir():
        return "process group only (no /proc, no subreaper on this platform)"
    state = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(state), 0, 0, 0)
    if state.value:
        return "subreaper, run token, session and process group"
    return "run token, session and process group (not a subreaper)"


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    name: str
    zombie: bool
    cpu_time_s: float  # own user + system time plus that of the children it reaped


def _read(pid: int) -> _Proc | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # The name is in parentheses and may itself contain spaces and parentheses.
    name = raw[raw.find("(") + 1 : raw.rfind(")")]
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return _Proc(
            pid,
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            name,
            fields[0] in "ZX",
            ticks / _CLK_TCK,
        )
    except (IndexError, ValueError):
        return None


def _scan() -> dict[int, _Proc]:
    procs: dict[int, _Proc] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(_PROC):
            if entry.name.isdigit():
                info = _read(int(entry.name))
                if info is not None:
                    procs[info.pid] = info
    return procs


def _has_token(pid: int, token: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # another user's process, or gone
        return False
    return token in environ.split(b"\0")


def _orphan_owner(pid: int, marker: bytes) -> str:
    """Whose an orphan is, by its run token.

    ``ours`` (this run's token), ``other`` (another run of this runner), or ``unknown``
    (no token, or its environment is gone: exiting, a zombie).
    """
    ours = f"{RUN_TOKEN_ENV}={RUNNER_TOKEN}.".encode()
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return "unknown"
    entries = environ.split(b"\0")
    if marker in entries:
        return "ours"
    if any(e.startswith(ours) for e in entries):
        return "other"
    return "unknown"


@dataclass(frozen=True)
class EscapedProcess:
    """A process of a run still alive after the run's own process ended; it was killed.

    Attributes:
        pid: Its process id.
        name: Its command name (``/proc/<pid>/comm``).
        found_by: ``run_token`` (its environment), ``session``, ``process_group``,
            ``descendant`` (of another one found) or ``reparented`` (an orphan handed to
            the runner as subreaper).
        cpu_time_s: Its CPU time in seconds, or None when it could not be read.
        cpu_time_source: ``rusage`` (reaped by the runner), ``procfs`` (last reading
            before it died) or ``none``.
    """

    pid: int
    name: str
    found_by: str
    cpu_time_s: float | None
    cpu_time_source: str

    def to_dict(self) -> dict[str, Any]:
        """Return the record form."""
        return {
            "pid": self.pid,
            "name": self.name,
            "found_by": self.found_by,
            "cpu_time_s": self.cpu_time_s,
            "cpu_time_source": self.cpu_time_source,
        }


@dataclass(frozen=True)
class Leftovers:
    """What :func:`end_leftovers` found and did.

    Attributes:
        escaped: Processes that outlived the run's process and were killed.
        cpu_time_s: CPU time of every left-behind process (escaped ones and reaped
            zombies of the group), in seconds; not in the run process's own rusage.
    """

    escaped: tuple[EscapedProcess, ...] = ()
    cpu_time_s: float = 0.0


def children_now() -> set[int]:
    """Direct children of this process right now (taken before a launch)."""
    me = os.getpid()
    return {p.pid for p in _scan().values() if p.ppid == me}


def tree_cpu_time_s(pgid: int, token: str) -> float | None:
    """CPU time so far of a running run's processes (group, session, token), in seconds.

    Each process counts its own time plus that of the children it reaped; a process
    already gone and reaped by someone not counted here is missing until the run ends
    (its final figure comes from ``wait4``). None without ``/proc``.
    """
    procs = _scan()
    if not procs:
        return None
    marker = f"{RUN_TOKEN_ENV}={token}".encode()
    members = {
        p.pid
        for p in procs.values()
        if p.pgid == pgid or p.sid == pgid or (p.pid != os.getpid() and _has_token(p.pid, marker))
    }
    # A member's cutime already holds its reaped children; count each process once.
    return sum(procs[pid].cpu_time_s for pid in members)


def end_leftovers(
    pgid: int, token: str, *, grace_s: float, known: set[int], settle_s: float = 3.0
) -> Leftovers:
    """Find, kill and reap every process left behind by the run led by ``pgid``.

    Args:
        pgid: Process group (and session) id of the run's process, which has ended.
        token: The run's ``HYPERJOULE_RUN_TOKEN``.
        grace_s: Seconds between SIGTERM and SIGKILL.
        known: Children of the runner that are not the run's (taken before the launch).
        settle_s: How long after SIGKILL to keep reaping orphans handed to us.
    """
    me, my_sid = os.getpid(), os.getsid(0)
    marker = f"{RUN_TOKEN_ENV}={token}".encode()
    claimed: dict[int, str] = {}
    alive_first: set[int] = set()
    names: dict[int, str] = {}
    last: dict[int, _Proc] = {}
    reaped: dict[int, float] = {}
    term_at: float | None = None
    deadline = time.monotonic() + grace_s + settle_s
    try:
        while True:
            procs = _scan()
            with _launched_lock:
                taken = {pid for pid, owner in _claims.items() if owner != marker}
                skip = known | _launched | {me} | taken
                _claim(procs, claimed, pgid, marker, skip, me, my_sid, bool(_launched))
                for pid in claimed:
                    _claims.setdefault(pid, marker)
            for pid in claimed:
                info = procs.get(pid)
                if info is None:
                    continue
                names.setdefault(pid, info.name)
                if not info.zombie:
                    # Seen alive after the run's process ended: it outlived its run.
                    last[pid] = info
                    alive_first.add(pid)
            _reap(claimed, procs, me, reaped)
            alive = [p for p in claimed if p in procs and not procs[p].zombie and p not in reaped]
            ours = [p for p in claimed if p in procs and procs[p].ppid == me and p not in reaped]
            if not alive and not ours:
                break
            now = time.monotonic()
            if alive and term_at is None:
                term_at = now
                _signal_all(alive, signal.SIGTERM)
            elif alive and term_at is not None and now - term_at >= grace_s:
                _signal_all(alive, signal.SIGKILL)
            if now > deadline:
                logger.warning("processes %s left by run group %d did not go away", alive, pgid)
                break
            time.sleep(0.05)
        return _summarise(claimed, alive_first, names, last, reaped)
    finally:
        with _launched_lock:
            for pid in claimed:
                if _claims.get(pid) == marker:
                    del _claims[pid]


def _claim(
    procs: dict[int, _Proc],
    claimed: dict[int, str],
    pgid: int,
    marker: bytes,
    skip: set[int],
    me: int,
    my_sid: int,
    others_in_flight: bool = False,
) -> None:
    for info in procs.values():
        if info.pid in claimed or info.pid in skip:
            continue
        how = None
        if info.pgid == pgid:
            how = "process_group"
        elif info.sid == pgid:
            how = "session"
        elif not info.zombie and _has_token(info.pid, marker):
            how = "run_token"
        elif info.ppid == me and info.sid != my_sid:
            # An orphan handed to us. With other runs in flight (--jobs, backgrounds) it
            # is ours only when its token says so; without a readable token it is left
            # to the last run to end, so no run claims (and kills) another's daemon.
            owner = _orphan_owner(info.pid, marker)
            if owner == "ours" or (owner == "unknown" and not others_in_flight):
                how = "reparented"
        if how is not None:
            claimed[info.pid] = how
    # Descendants of anything claimed, to a fixpoint (a daemon that also cleared its env).
    grew = True
    while grew:
        grew = False
        for info in procs.values():
            if info.pid not in claimed and info.pid not in skip and info.ppid in claimed:
                claimed[info.pid] = "descendant"
                grew = True


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(
    claimed: dict[int, str], procs: dict[int, _Proc], me: int, reaped: dict[int, float]
) -> None:
    """Wait for claimed children of ours that ended: their rusage is their CPU time."""
    for pid in claimed:
        info = procs.get(pid)
        if pid in reaped or info is None or info.ppid != me or not info.zombie:
            continue
        try:
            got, _, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if got == pid:
            reaped[pid] = usage.ru_utime + usage.ru_stime


def _summarise(
    claimed: dict[int, str],
    alive_first: set[int],
    names: dict[int, str],
    last: dict[int, _Proc],
    reaped: dict[int, float],
) -> Leftovers:
    escaped: list[EscapedProcess] = []
    total_s = 0.0
    for pid, how in claimed.items():
        info = last.get(pid)
        if pid in reaped:
            cpu_s: float | None = reaped[pid]
            source = "rusage"
        elif info is not None and info.ppid not in claimed:
            # Not reaped by us: its last reading (its parent, if claimed, counts it).
            cpu_s, source = info.cpu_time_s, "procfs"
        else:
            cpu_s, source = None, "none"
        total_s += cpu_s or 0.0
        if pid in alive_first:
            escaped.append(EscapedProcess(pid, names.get(pid, "?"), how, cpu_s, source))
    return Leftovers(tuple(sorted(escaped, key=lambda e: e.pid)), total_s)
