"""Classifying how an attempt ended: the lab workflow called crashes successes; we don't."""

from __future__ import annotations

import re
import signal
from collections.abc import Collection, Sequence
from pathlib import Path

from hyperjoule._text import safe_text
from hyperjoule.execution._process import ProcessResult
from hyperjoule.metrics import open_regular_file
from hyperjoule.records import RunStatus

__all__ = ["OOM_PATTERNS", "classify_outcome"]

OOM_PATTERNS = (
    re.compile(rb"CUDA out of memory", re.IGNORECASE),
    re.compile(rb"\bOutOfMemoryError\b"),
    re.compile(rb"^\s*MemoryError\b", re.MULTILINE),
    re.compile(rb"RESOURCE_EXHAUSTED: Out of memory"),
    re.compile(rb"CUBLAS_STATUS_ALLOC_FAILED|HIP out of memory"),
)
"""Log markers of running out of (GPU or host) memory."""

_TAIL_BYTES = 64 * 1024


def _log_tail(log_path: Path) -> bytes:
    try:
        # The target may have replaced its log by a FIFO or a device: never read those.
        with open_regular_file(log_path) as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            return f.read()
    except OSError:
        return b""


def classify_outcome(
    result: ProcessResult,
    *,
    metrics_found: Collection[str],
    required_metrics: Sequence[str],
    log_path: Path,
    timeout_s: float | None = None,
) -> tuple[RunStatus, str | None]:
    """Return the outcome class of an attempt and a one-line reason (None on success).

    ``succeeded`` needs exit code 0 *and* every required metric. Out-of-memory is read
    from the log tail (CUDA OOM, ``MemoryError``) or inferred from a SIGKILL that
    hyperjoule did not send (the kernel's OOM killer). ``timeout_s`` is the limit the
    process passed, named in the reason (its duration also counts the kill's grace).
    """
    if result.interrupted:
        return RunStatus.INTERRUPTED, "stopped by the user (Ctrl-C or SIGTERM)"
    if result.stopped_early:
        return RunStatus.PRUNED, "stopped early by the search's pruner"
    if result.timed_out:
        limit_s = result.duration_s if timeout_s is None else timeout_s
        return RunStatus.TIMEOUT, f"killed after the target's timeout of {limit_s:g} s"
    if result.exit_code == 0:
        missing = [m for m in required_metrics if m not in metrics_found]
        if missing:
            return (
                RunStatus.METRICS_MISSING,
                f"exited 0 but printed no value for required metric(s): {', '.join(missing)}",
            )
        return RunStatus.SUCCEEDED, None
    tail = _log_tail(log_path)
    for pattern in OOM_PATTERNS:
        match = pattern.search(tail)
        if match:
            marker = match.group(0).decode(errors="replace").strip()
            return RunStatus.OOM, f"out of memory: log says {marker!r}"
    if result.signal == signal.SIGKILL:
        return RunStatus.OOM, "killed by SIGKILL not sent by hyperjoule (likely the OOM killer)"
    last = _last_line(tail)
    if result.signal is not None:
        try:
            name = signal.Signals(result.signal).name
        except ValueError:
            name = str(result.signal)
        return RunStatus.FAILED, f"killed by signal {name}" + (f": {last}" if last else "")
    return RunStatus.FAILED, f"exited with code {result.exit_code}" + (f": {last}" if last else "")


def _last_line(tail: bytes) -> str:
    """The last non-empty log line (usually the exception), shortened for a reason."""
    for line in reversed(tail.decode(errors="replace").splitlines()):
        if line.strip():
            # Target output: control characters escaped so the reason is plain data.
            return safe_text(line.strip(), 200)
    return ""
