"""Watchdog process that kills training process groups when the runner dies.

Run as a script (not imported): it reads ``+PGID`` / ``-PGID`` lines on stdin from the
runner, ``=PATH<TAB>VALUE`` / ``!PATH`` lines for machine settings to write back, and
one ``@TOKEN`` line: the runner's token, the prefix of the ``HYPERJOULE_RUN_TOKEN`` in
the environment of every process it launched. When stdin reaches end-of-file without a
final ``exit`` line, the runner is gone (killed by any signal, even SIGKILL): every group
still tracked, every process in a tracked session and every process whose environment
carries the runner's token (daemons that left their group and session) gets SIGTERM,
then SIGKILL after a short grace, so no training process outlives its runner; then every
setting still registered (a CPU governor) is restored. It deliberately
imports nothing from hyperjoule so that it starts fast and cannot fail on a broken
environment.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

GRACE_S = 2.0


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member (one we may not signal counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _escaped(token: str, sessions: set[int]) -> set[int]:
    """Processes in a tracked session or carrying the runner's token (Linux /proc)."""
    marker = ("HYPERJOULE_RUN_TOKEN=" + token + ".").encode()
    found: set[int] = set()
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    me = os.getpid()
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            sid = int(stat[stat.rfind(b")") + 2 :].split()[3])
            if sid in sessions:
                found.add(pid)
                continue
            if not token:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if any(v.startswith(marker) for v in environ.split(b"\0")):
            found.add(pid)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def main() -> int:
    """Track groups until stdin closes; kill the ones left if the runner vanished."""
    # Ctrl-C in the terminal is for the runner, which stops runs cleanly itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tracked: set[int] = set()
    restore: dict[str, str] = {}
    commands: dict[str, list[str]] = {}
    token = ""
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text == "exit":
            return 0
        if text.startswith("@"):
            token = text[1:]
            continue
        if text.startswith("=") and "\t" in text:
            path, value = text[1:].split("\t", 1)
            restore.setdefault(path, value)  # the first value is the one before the study
            continue
        if text.startswith("!"):
            restore.pop(text[1:], None)
            continue
        if text.startswith("^") and "\t" in text:
            key, argv = text[1:].split("\t", 1)
            with contextlib.suppress(ValueError):
                commands.setdefault(key, [str(a) for a in json.loads(argv)])
            continue
        if text.startswith("~"):
            commands.pop(text[1:], None)
            continue
        if text[:1] in "+-" and text[1:].isdigit():
            pgid = int(text[1:])
            if text[0] == "+":
                tracked.add(pgid)
            else:
                tracked.discard(pgid)
    for pgid in tracked:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    escaped = _escaped(token, tracked)
    for pid in escaped:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(group_alive(p) for p in tracked):
        time.sleep(0.05)
    for pgid in tracked:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    # Once more: a daemon may have forked again during the grace period.
    for pid in escaped | _escaped(token, tracked):
        _signal(pid, signal.SIGKILL)
    for path, value in restore.items():
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError:
            continue  # nothing left to report to: the runner is gone
    for argv in commands.values():
        try:
            subprocess.run(argv, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
    return 0


if __name__ == "__main__":
    if "--detach" in sys.argv[1:] and os.fork() > 0:
        # The launcher exits at once: the watchdog (the forked child, holding the same
        # stdin pipe) is then nobody's child that a killer of the runner's children sees.
        os._exit(0)
    sys.exit(main())
