"""The pure attempt executor: one :class:`RunTask` in, one :class:`AttemptResult` out.

Every executor runs this function on the node that executes the attempt. It starts the
backgrounds of a parallel run, opens an energy window over the attempt's devices, runs
the training process in its own process group, closes the window, reads metrics and
classifies the outcome. It touches no database and no run record: everything it
learns is in the result, and every file it writes is under ``task.run_dir``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hyperjoule.devices import EnergyWindow, NodeDevices
from hyperjoule.execution._background import BackgroundJob, BackgroundSet
from hyperjoule.execution._checkpoint import (
    CHECKPOINT_PERIOD_S,
    FIRST_CHECKPOINT_S,
    AttemptCheckpointer,
    CheckpointSink,
)
from hyperjoule.execution._intermediate import IntermediateWatch, PointCallback
from hyperjoule.execution._outcome import classify_outcome
from hyperjoule.execution._parallel_energy import background_estimate, mark_parallel
from hyperjoule.execution._process import run_process
from hyperjoule.execution._result import AttemptResult, BackgroundReport
from hyperjoule.execution._task import RunTask, background_dir
from hyperjoule.execution._tracking import GroupTracker, NoTracker
from hyperjoule.meters import (
    Baseline,
    RunUsage,
    gpu_temperature_reader,
    merge_readings,
    net_energy_with_reason,
)
from hyperjoule.metrics import MetricPattern, extract_metrics
from hyperjoule.records import BackgroundPolicy, BackgroundSpec, EnergyBlock, RunStatus
from hyperjoule.storage import utc_timestamp

__all__ = ["attempt_environ", "execute", "run_files"]

logger = logging.getLogger(__name__)

METRICS_FILENAME = "metrics.json"


class _AttemptGroups:
    """Tracks an attempt's process groups and counts them in its energy window."""

    def __init__(self, tracker: GroupTracker) -> None:
        self._tracker = tracker
        self._lock = threading.Lock()
        self._live: set[int] = set()
        self._window: EnergyWindow | None = None

    def track(self, pgid: int) -> None:
        self._tracker.track(pgid)
        with self._lock:
            self._live.add(pgid)
            window = self._window
        if window is not None:
            window.attach(pgid)

    def untrack(self, pgid: int) -> None:
        self._tracker.untrack(pgid)
        with self._lock:
            self._live.discard(pgid)

    def watch(self, window: EnergyWindow) -> None:
        with self._lock:
            self._window = window
            live = list(self._live)
        for pgid in live:
            window.attach(pgid)


def attempt_environ(task: RunTask) -> dict[str, str]:
    """The complete environment of the attempt's process on this node.

    The node's environment, the task's overrides, and ``CUDA_VISIBLE_DEVICES`` set to
    the attempt's GPUs when it has its own (NVML numbering, so ``CUDA_DEVICE_ORDER`` is
    ``PCI_BUS_ID`` unless the task says otherwise).
    """
    return _node_environ(task.env, task.device_gpus)


def _node_environ(overrides: dict[str, str], gpus: tuple[int, ...] | None) -> dict[str, str]:
    env = {**os.environ, **overrides}
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpus)
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return env


def execute(
    task: RunTask,
    devices: NodeDevices,
    *,
    stop: threading.Event | None = None,
    tracker: GroupTracker | None = None,
    baseline: Baseline | None = None,
    on_checkpoint: CheckpointSink | None = None,
    on_point: PointCallback | None = None,
) -> AttemptResult:
    """Run one attempt and return what happened; never writes outside ``task.run_dir``.

    Args:
        task: The attempt.
        devices: The meters of this node (shared with concurrent attempts).
        stop: When set, the attempt's process groups are killed and the result is
            ``interrupted``.
        tracker: Told every process group started and reaped (the orphan watchdog).
        baseline: Idle baseline of this node's devices, for net energy.
        on_checkpoint: Receives the attempt's duration, CPU time and energy so far every
            ``CHECKPOINT_PERIOD_S`` (the coordinator stores them, so a killed runner
            loses seconds of accounting); called from this attempt's thread.
        on_point: Search runs: receives each intermediate metrics point as the run
            prints it; when it returns True the run is stopped (``pruned``).

    Returns:
        The attempt's result. A failing training process is a result, not an exception.
    """
    stop = stop or threading.Event()
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_name = task.log_name
    log_path = run_dir / log_name
    metrics_file = run_dir / METRICS_FILENAME
    metrics_file.unlink(missing_ok=True)  # a retry must not read the last attempt's file
    watch = (
        IntermediateWatch(log_path, task.intermediate_step, on_point)
        if task.intermediate_step is not None
        else None
    )
    if stop.is_set():
        return AttemptResult.interrupted(task.run_id, task.attempt, "stopped before it started")
    env = attempt_environ(task)
    groups = _AttemptGroups(tracker or NoTracker())
    key = f"{task.run_id}/{task.attempt}"
    with _backgrounds(task, env, groups) as bg:
        if bg is not None:
            bg.wait_until_loaded(stop)
        window = devices.open_window(key, gpus=task.device_gpus, environ=env, run_dir=run_dir)
        groups.watch(window)
        started_at = utc_timestamp()
        window_start = time.monotonic()
        try:
            result = run_process(
                list(task.argv),
                cwd=Path(task.cwd),
                env=env,
                log_path=log_path,
                timeout_s=task.timeout_s,
                grace_s=task.grace_s,
                stop_event=stop,
                on_start=groups.track,
                on_progress=(
                    AttemptCheckpointer(task.attempt, window.peek, on_checkpoint)
                    if on_checkpoint is not None
                    else None
                ),
                progress_every_s=CHECKPOINT_PERIOD_S,
                first_progress_s=FIRST_CHECKPOINT_S,
                should_stop=watch.should_stop if watch is not None else None,
            )
        except BaseException:
            window.abort()
            raise
        window_end = time.monotonic()
        groups.untrack(result.pid)
        usage = RunUsage(duration_s=result.duration_s, cpu_time_s=result.cpu_time_s)
        readings = window.close(usage)
    ended_at = utc_timestamp()
    if watch is not None:
        watch.read_new()  # the lines printed after the last poll
    energy, power = merge_readings(readings)
    if baseline is not None:
        _net_energy(energy, result.duration_s, baseline)
    patterns = {
        m.name: MetricPattern(regex=m.regex, match=m.match)
        for m in task.metrics
        if m.regex is not None
    }
    extracted = extract_metrics(log_path, patterns=patterns, metrics_file=metrics_file)
    status, reason = classify_outcome(
        result,
        metrics_found=extracted.values.keys(),
        required_metrics=task.required_metrics,
        log_path=log_path,
        timeout_s=task.timeout_s,
    )
    background: BackgroundReport | None = None
    if bg is not None:
        window_s = (window_start, window_end)
        background = BackgroundReport.from_dict(bg.record(window_s))
        estimate = background_estimate(bg, window_s, window.cpu_watts_per_core)
        mark_parallel(energy, background, estimate)
        policy = task.background_policy or BackgroundPolicy()
        if (
            status is RunStatus.SUCCEEDED
            and policy.require_effective_background
            and not background.effective
        ):
            status = RunStatus.FAILED
            reason = "background not effective: " + "; ".join(background.reasons)
    return AttemptResult(
        run_id=task.run_id,
        attempt=task.attempt,
        status=status,
        reason=reason,
        exit_code=result.exit_code if result.signal is None else -result.signal,
        signal=result.signal,
        duration_s=result.duration_s,
        cpu_time_s=result.cpu_time_s,
        max_rss_bytes=result.max_rss_bytes,
        started_at=started_at,
        ended_at=ended_at,
        metrics=dict(extracted.values),
        metrics_sources=dict(extracted.sources),
        metrics_problems=list(extracted.problems),
        energy=energy,
        power=power,
        meters=window.meter_names,
        background=background,
        log=log_name,
        files=run_files(run_dir),
        escaped_processes=[e.to_dict() for e in result.escaped],
        leftover_cpu_time_s=result.leftover_cpu_time_s,
        escape_watch=result.escape_watch,
        intermediate=watch.points if watch is not None else None,
    )


def _net_energy(energy: EnergyBlock, duration_s: float, baseline: Baseline) -> None:
    for name, component in energy.components.items():
        component.idle_power_w = baseline.power_w.get(name)
        net_j, why = net_energy_with_reason(component, duration_s, baseline, name=name)
        if net_j is not None and component.share is not None and component.idle_power_w:
            # An apportioned figure carries only its share of the device's idle draw.
            net_j = (component.energy_j or 0.0) - component.share * component.idle_power_w * (
                duration_s
            )
        component.net_energy_j, component.net_reason = net_j, why


def run_files(run_dir: Path) -> list[str]:
    """Every file under ``run_dir`` except ``run.json`` (the recorder's), relative, sorted."""
    files: list[str] = []
    for root, _dirs, names in os.walk(run_dir):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), run_dir)
            if relative != "run.json":
                files.append(relative.replace(os.sep, "/"))
    return sorted(files)


@contextmanager
def _backgrounds(
    task: RunTask, env: dict[str, str], groups: _AttemptGroups
) -> Iterator[BackgroundSet | None]:
    """Start a parallel run's backgrounds; stop them however the block ends."""
    if not task.background:
        yield None
        return
    policy = task.background_policy or BackgroundPolicy()
    jobs = []
    for n, bg in enumerate(task.background, start=1):
        bg_dir = Path(background_dir(task.run_dir, task.attempt, n, bg.target))
        # The background's own environment on the foreground's GPUs.
        bg_env = _node_environ(bg.env, task.device_gpus)
        bg_env.setdefault("HYPERJOULE_RUN_DIR", str(bg_dir))
        bg_env["HYPERJOULE_BACKGROUND"] = "1"
        jobs.append(
            BackgroundJob(
                spec=BackgroundSpec(bg.target, bg.model, dict(bg.hyperparameters)),
                argv=list(bg.argv),
                cwd=Path(bg.cwd),
                env=bg_env,
                directory=bg_dir,
                policy=policy,
                reaper=groups,
                timeout_s=bg.timeout_s,
            )
        )
    # GPU utilisation of the shared GPUs says whether a GPU background loads them.
    gpu_reader = gpu_temperature_reader(
        gpu_indices=list(task.device_gpus) if task.device_gpus is not None else None,
        environ=env,
    )
    util = gpu_reader.utilization_pct if gpu_reader is not None else None
    backgrounds = BackgroundSet(jobs, policy, gpu_util_pct=util)
    backgrounds.start()
    try:
        yield backgrounds
    finally:
        backgrounds.stop()
        if gpu_reader is not None:
            gpu_reader.close()
