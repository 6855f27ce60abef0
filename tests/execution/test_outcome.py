"""Outcome classes from how a process ended and what its log says."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from hyperjoule.execution import ProcessResult, classify_outcome
from hyperjoule.records import RunStatus


def _result(log: Path, exit_code: int | None = 0, sig: int | None = None) -> ProcessResult:
    return ProcessResult(exit_code, sig, False, False, 1.0, 0.5, None, log)


def _classify(tmp_path: Path, text: str, found: tuple[str, ...], **kw: object) -> RunStatus:
    log = tmp_path / "attempt-1.log"
    log.write_text(text)
    status, _ = classify_outcome(
        _result(log, **kw),  # type: ignore[arg-type]
        metrics_found=found,
        required_metrics=["acc"],
        log_path=log,
    )
    return status


def test_success_needs_exit_zero_and_required_metrics(tmp_path: Path) -> None:
    assert _classify(tmp_path, "acc 1", ("acc",)) is RunStatus.SUCCEEDED
    assert _classify(tmp_path, "done", ()) is RunStatus.METRICS_MISSING
    assert _classify(tmp_path, "acc 1", ("acc",), exit_code=1) is RunStatus.FAILED


@pytest.mark.parametrize(
    "text",
    [
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB",
        "Traceback (most recent call last):\nMemoryError",
    ],
)
def test_oom_from_log(tmp_path: Path, text: str) -> None:
    assert _classify(tmp_path, text, (), exit_code=1) is RunStatus.OOM


def test_foreign_sigkill_is_oom_killer(tmp_path: Path) -> None:
    status = _classify(tmp_path, "", (), exit_code=None, sig=int(signal.SIGKILL))
    assert status is RunStatus.OOM


def test_failure_reason_quotes_last_log_line(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    log.write_text("Traceback (most recent call last):\nRuntimeError: boom\n\n")
    status, reason = classify_outcome(
        _result(log, exit_code=3), metrics_found=(), required_metrics=(), log_path=log
    )
    assert status is RunStatus.FAILED
    assert reason == "exited with code 3: RuntimeError: boom"


def test_timeout_reason_names_the_limit_not_the_grace(tmp_path: Path) -> None:
    from hyperjoule.execution import run_process

    log = tmp_path / "attempt-1.log"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    result = run_process(
        [sys.executable, "-c", stubborn],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=log,
        timeout_s=0.5,
        grace_s=1.5,
    )
    assert result.timed_out and result.duration_s >= 1.5
    status, reason = classify_outcome(
        result, metrics_found=(), required_metrics=(), log_path=log, timeout_s=0.5
    )
    assert status is RunStatus.TIMEOUT
    assert reason == "killed after the target's timeout of 0.5 s"


def test_failure_reason_escapes_control_characters(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    log.write_bytes(b"RuntimeError: \x1b]0;pwned\x07 \x1b[2J boom\n")
    _, reason = classify_outcome(
        _result(log, exit_code=1), metrics_found=(), required_metrics=(), log_path=log
    )
    assert reason is not None and "\x1b" not in reason and "\x07" not in reason
    assert "\\x1b]0;pwned\\x07" in reason


def test_stopped_before_start_launches_nothing(tmp_path: Path) -> None:
    """Ctrl-C during a background warm-up: the foreground is never launched."""
    import threading

    from hyperjoule.execution import run_process

    marker = tmp_path / "launched"
    stop = threading.Event()
    stop.set()
    log = tmp_path / "attempt-1.log"
    result = run_process(
        [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=log,
        stop_event=stop,
    )
    time.sleep(0.3)
    assert result.interrupted and result.pid == 0 and not marker.exists()
    status, _ = classify_outcome(result, metrics_found=(), required_metrics=(), log_path=log)
    assert status is RunStatus.INTERRUPTED
