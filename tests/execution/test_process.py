"""run_process on real processes: exit codes, streamed logs, timeouts, group kills."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from hyperjoule.execution import classify_outcome, run_process
from hyperjoule.records import RunStatus

PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _run(tmp_path: Path, code: str, **kwargs: object) -> tuple[object, Path]:
    log = tmp_path / "attempt-1.log"
    result = run_process(
        [PY, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=log,
        **kwargs,  # type: ignore[arg-type]
    )
    return result, log


def test_exit_code_and_output_streamed_to_log(tmp_path: Path) -> None:
    code = "import sys; print('out line'); print('err line', file=sys.stderr); sys.exit(4)"
    result, log = _run(tmp_path, code)
    assert result.exit_code == 4 and result.signal is None  # type: ignore[attr-defined]
    text = log.read_text()
    assert "out line" in text and "err line" in text
    assert result.duration_s > 0  # type: ignore[attr-defined]


def test_cpu_time_of_busy_child_is_reported(tmp_path: Path) -> None:
    code = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    result, _ = _run(tmp_path, code)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert result.cpu_time_s is not None and result.cpu_time_s >= 0.3  # type: ignore[attr-defined]


def test_child_runs_in_its_own_process_group(tmp_path: Path) -> None:
    code = f"import os; print(os.getpgid(0) == os.getpid(), os.getpgid(0) != {os.getpgid(0)})"
    _, log = _run(tmp_path, code)
    assert log.read_text().strip() == "True True"


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(600)\n"
    )
    result, _ = _run(tmp_path, code, timeout_s=1.5, grace_s=1.0)
    assert result.timed_out  # type: ignore[attr-defined]
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    status, reason = classify_outcome(
        result,
        metrics_found=(),
        required_metrics=(),
        log_path=tmp_path / "attempt-1.log",  # type: ignore[arg-type]
    )
    assert status is RunStatus.TIMEOUT and reason


def test_sigterm_ignoring_child_is_killed_after_grace(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    result, _ = _run(tmp_path, code, timeout_s=0.5, grace_s=0.5)
    assert result.timed_out and result.signal == 9  # type: ignore[attr-defined]


def test_stop_event_interrupts(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    result, log = _run(tmp_path, "import time; time.sleep(600)", stop_event=stop, grace_s=1.0)
    assert result.interrupted and not result.timed_out  # type: ignore[attr-defined]
    status, _ = classify_outcome(
        result,
        metrics_found=(),
        required_metrics=(),
        log_path=log,  # type: ignore[arg-type]
    )
    assert status is RunStatus.INTERRUPTED


def test_missing_program_is_exit_127_with_reason(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    result = run_process(
        [str(tmp_path / "no-such-program")], cwd=tmp_path, env=dict(os.environ), log_path=log
    )
    assert result.exit_code == 127
    status, reason = classify_outcome(result, metrics_found=(), required_metrics=(), log_path=log)
    assert status is RunStatus.FAILED and reason and "no-such-program" in reason


def test_leftover_background_children_die_with_the_run(tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    code = (
        "import subprocess, sys\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(str(c.pid))\n"
    )
    result, _ = _run(tmp_path, code, grace_s=0.5)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
