"""Daemons that double-fork and call setsid() are found, killed and reported at run end."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from hyperjoule.execution import run_process
from hyperjoule.execution._proctree import child_subreaper

PY = sys.executable

# The classic daemon: fork, setsid, fork again, the middle process exits; the grandchild
# burns some CPU, then sleeps. ``clear_env`` also drops its environment (and so the token).
DAEMON = textwrap.dedent(
    """
    import os, sys, time
    pid_file, clear_env, main_sleep_s = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if clear_env:
                os.execve(sys.executable, [sys.executable, "-c",
                    "import sys, time\\n"
                    "end = time.process_time() + 0.3\\n"
                    "while time.process_time() < end: pass\\n"
                    "open(sys.argv[1], 'w').write(str(__import__('os').getpid()))\\n"
                    "time.sleep(600)", pid_file], {})
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
            with open(pid_file, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        os._exit(0)
    while not os.path.exists(pid_file) or not open(pid_file).read():
        time.sleep(0.02)
    time.sleep(main_sleep_s)
    print("main done", flush=True)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _daemon_run(tmp_path: Path, *, clear_env: bool = False, **kwargs: object):  # type: ignore[no-untyped-def]
    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    pid_file = tmp_path / "daemon.pid"
    main_sleep_s = str(kwargs.pop("main_sleep_s", 0.0))
    try:
        result = run_process(
            [PY, str(script), str(pid_file), "1" if clear_env else "0", main_sleep_s],
            cwd=tmp_path,
            env=dict(os.environ),
            log_path=tmp_path / "attempt-1.log",
            grace_s=0.5,
            **kwargs,  # type: ignore[arg-type]
        )
        return result, int(pid_file.read_text())
    finally:
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_setsid_daemon_is_killed_and_reported_when_its_run_ends(tmp_path: Path) -> None:
    with child_subreaper():
        result, daemon = _daemon_run(tmp_path)
    assert result.exit_code == 0
    assert not _alive(daemon), "the daemon outlived its run"
    assert [e.pid for e in result.escaped] == [daemon]
    escaped = result.escaped[0]
    assert escaped.found_by in ("run_token", "reparented")
    assert escaped.name.startswith("python")
    # Its CPU time (0.3 s of busy loop) is counted, from its rusage (reaped as subreaper).
    assert escaped.cpu_time_source == "rusage" and escaped.cpu_time_s is not None
    assert escaped.cpu_time_s >= 0.25
    assert result.leftover_cpu_time_s >= 0.25
    assert result.cpu_time_s is not None and result.cpu_time_s >= result.leftover_cpu_time_s
    assert "subreaper" in result.escape_watch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_setsid_daemon_is_killed_at_timeout(tmp_path: Path) -> None:
    with child_subreaper():
        result, daemon = _daemon_run(tmp_path, main_sleep_s=600, timeout_s=1.5)
    assert result.timed_out
    assert not _alive(daemon)
    assert [e.pid for e in result.escaped] == [daemon]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_daemon_without_token_is_found_as_reparented_orphan(tmp_path: Path) -> None:
    # It drops its environment: only the subreaper (it was re-parented to us) finds it.
    with child_subreaper():
        result, daemon = _daemon_run(tmp_path, clear_env=True)
    assert not _alive(daemon)
    assert [(e.pid, e.found_by) for e in result.escaped] == [(daemon, "reparented")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_daemon_found_by_token_without_subreaper(tmp_path: Path) -> None:
    # Not a subreaper: the daemon goes to init, the token in its environment finds it.
    result, daemon = _daemon_run(tmp_path)
    assert not _alive(daemon)
    assert [(e.pid, e.found_by) for e in result.escaped] == [(daemon, "run_token")]
    assert result.escaped[0].cpu_time_source == "procfs"
    assert result.escaped[0].cpu_time_s is not None and result.escaped[0].cpu_time_s >= 0.2


def test_plain_run_reports_nothing_escaped(tmp_path: Path) -> None:
    with child_subreaper():
        result = run_process(
            [PY, "-c", "print(1)"], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "l"
        )
    assert result.escaped == () and result.leftover_cpu_time_s == 0.0
