"""The local executor: up to N attempts at once on this machine, each on its own GPUs."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from hyperjoule.devices import NodeDevices, node_name
from hyperjoule.errors import ExecutorError
from hyperjoule.execution._attempt import attempt_environ, execute
from hyperjoule.execution._checkpoint import CheckpointSink
from hyperjoule.execution._cooldown import DeviceCooldown
from hyperjoule.execution._executor import Executor
from hyperjoule.execution._intermediate import PointCallback
from hyperjoule.execution._power import GpuPowerLimits
from hyperjoule.execution._result import AttemptResult, ExecutorInfo
from hyperjoule.execution._task import RunTask
from hyperjoule.execution._tracking import GroupTracker, NoTracker
from hyperjoule.meters import Baseline

__all__ = ["LocalExecutor", "default_jobs"]

logger = logging.getLogger(__name__)


def default_jobs(gpus: Sequence[int], gpus_per_run: int) -> int:
    """How many runs fit at once: GPUs ÷ ``gpus_per_run``, else 1 (no GPUs, or CPU runs)."""
    if gpus_per_run > 0 and gpus:
        return max(1, len(gpus) // gpus_per_run)
    return 1


@dataclasses.dataclass
class _Queued:
    future: Future[AttemptResult]
    task: RunTask
    on_point: PointCallback | None = None
    on_checkpoint: CheckpointSink | None = None


class LocalExecutor(Executor):
    """Runs attempts in threads of this process, each in its own process group.

    Args:
        devices: This machine's meters (shared by concurrent attempts).
        jobs: Attempts at once; None: GPUs ÷ ``gpus_per_run`` (1 without GPUs).
        gpus: GPUs this executor may hand out (NVML indices); the machine's by default
            is the caller's job (:func:`~hyperjoule.devices.node_gpus`).
        gpus_per_run: Default number of whole GPUs per attempt for tasks that ask for
            none themselves (``RunTask.gpus_per_run`` wins when set).
        tracker: Told every process group started and reaped (the orphan watchdog).
        baseline: Idle baseline for net energy and until-idle cooldowns.
        power_limits: Sets a task's ``gpu_power_limit_w`` on its GPUs for the attempt.
    """

    kind = "local"

    def __init__(
        self,
        devices: NodeDevices,
        *,
        jobs: int | None = None,
        gpus: Sequence[int] = (),
        gpus_per_run: int = 0,
        tracker: GroupTracker | None = None,
        baseline: Baseline | None = None,
        power_limits: GpuPowerLimits | None = None,
    ) -> None:
        if jobs is not None and jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self._devices = devices
        self._gpus = tuple(dict.fromkeys(gpus))
        self._gpus_per_run = gpus_per_run
        self._capacity = jobs if jobs is not None else default_jobs(self._gpus, gpus_per_run)
        self._tracker = tracker or NoTracker()
        self.baseline = baseline
        self._power_limits = power_limits
        self._power_lock = threading.Lock()  # one NVML handle, several worker threads
        self._stop = threading.Event()
        self._cooldown = DeviceCooldown(baseline, self._stop)
        self._cond = threading.Condition()
        self._queue: deque[_Queued] = deque()
        self._busy_gpus: set[int] = set()
        self._running = 0
        self._closed = False
        self._host = node_name()
        self._workers = [
            threading.Thread(target=self._work, name=f"hyperjoule-job-{n}", daemon=True)
            for n in range(self._capacity)
        ]
        for worker in self._workers:
            worker.start()

    def use_baseline(self, baseline: Baseline | None) -> None:
        """Use ``baseline`` for net energy and until-idle cooldowns from now on."""
        self.baseline = baseline
        self._cooldown.baseline = baseline

    @property
    def capacity(self) -> int:
        """Attempts at once."""
        return self._capacity

    @property
    def gpus(self) -> tuple[int, ...]:
        """The GPUs this executor hands out."""
        return self._gpus

    def submit(
        self,
        task: RunTask,
        *,
        on_point: PointCallback | None = None,
        on_checkpoint: CheckpointSink | None = None,
    ) -> Future[AttemptResult]:
        """Queue ``task`` (see :class:`~hyperjoule.execution.Executor`)."""
        future: Future[AttemptResult] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the executor was shut down; create a new one")
            need = self._need(task)
            if task.gpus is None and need > len(self._gpus):
                future.set_exception(
                    ExecutorError(
                        f"run {task.run_id} needs {need} GPU(s) of its own but this machine "
                        f"gives {len(self._gpus)}; lower gpus_per_run"
                    )
                )
                return future
            self._queue.append(_Queued(future, task, on_point, on_checkpoint))
            self._cond.notify_all()
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Stop accepting tasks; with ``cancel``, cancel queued ones and stop running ones."""
        with self._cond:
            self._closed = True
            if cancel:
                while self._queue:
                    self._queue.popleft().future.cancel()
                self._stop.set()
            self._cond.notify_all()
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join()

    def _need(self, task: RunTask) -> int:
        return task.gpus_per_run or self._gpus_per_run

    def _place(self, task: RunTask) -> tuple[int, ...] | None | bool:
        """GPUs for ``task`` now (None: it needs none), or False when it must wait."""
        if task.gpus is not None:
            # GPUs named in the config are held like handed-out ones: two runs that name
            # the same GPU never overlap, whatever --jobs says.
            if any(g in self._busy_gpus for g in task.gpus):
                return False
            self._busy_gpus.update(task.gpus)
            return task.gpus
        need = self._need(task)
        if need == 0:
            return None
        free = [g for g in self._gpus if g not in self._busy_gpus]
        if len(free) < need:
            return False
        chosen = tuple(free[:need])
        self._busy_gpus.update(chosen)
        return chosen

    def _set_power_limit(self, task: RunTask) -> dict[str, Any] | None:
        if task.gpu_power_limit_w is None or self._power_limits is None:
            return None
        with self._power_lock:
            return self._power_limits.apply_limit(
                task.gpu_power_limit_w, task.device_gpus, attempt_environ(task)
            )

    def _restore_power_limit(self, applied: dict[str, Any] | None) -> None:
        if applied is None or self._power_limits is None or not applied.get("applied"):
            return
        with self._power_lock:
            self._power_limits.restore(applied.get("gpus"))

    def _next(self) -> tuple[_Queued, tuple[int, ...] | None] | None:
        """The next task to run and its GPUs, in submission order; None to quit."""
        with self._cond:
            while True:
                while self._queue and self._queue[0].future.cancelled():
                    self._queue.popleft()
                if self._queue:
                    placed = self._place(self._queue[0].task)
                    if placed is not False:
                        item = self._queue.popleft()
                        self._running += 1
                        return item, placed if isinstance(placed, tuple) else None
                elif self._closed:
                    return None
                self._cond.wait()

    def _work(self) -> None:
        while True:
            picked = self._next()
            if picked is None:
                return
            item, gpus = picked
            try:
                if item.future.set_running_or_notify_cancel():
                    self._run(item, gpus)
            finally:
                with self._cond:
                    self._running -= 1
                    if gpus is not None:
                        self._busy_gpus.difference_update(gpus)
                    self._cond.notify_all()

    def _run(self, item: _Queued, gpus: tuple[int, ...] | None) -> None:
        task = item.task.with_gpus(gpus) if gpus is not None else item.task
        tokens = [f"gpu:{g}" for g in gpus] if gpus else ["cpu"]
        try:
            cooldown = self._cooldown.pay(tokens, gpus)
            limit = self._set_power_limit(task)
            try:
                result = execute(
                    task,
                    self._devices,
                    stop=self._stop,
                    tracker=self._tracker,
                    baseline=self.baseline,
                    on_point=item.on_point,
                    on_checkpoint=item.on_checkpoint,
                )
            finally:
                self._restore_power_limit(limit)
            result.cooldown_before = cooldown
            result.gpu_power_limit = limit
            result.executor = ExecutorInfo("local", self._host, self._host, gpus)
        except BaseException as e:
            logger.error("run %s attempt %d failed to execute: %s", task.run_id, task.attempt, e)
            item.future.set_exception(e)
            return
        self._cooldown.owe(tokens, task.cooldown)
        item.future.set_result(result)
