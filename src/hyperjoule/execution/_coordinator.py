"""The coordinator loop: planned runs → tasks → executor → results → recorder.

Keeps up to ``executor.capacity`` runs in flight, retries an attempt when its outcome
class is in the run's ``retry_on`` (a new task, possibly on another slot of the
executor), and records every run exactly once. A stop (Ctrl-C) cancels the executor:
running attempts are killed and recorded ``interrupted``, runs not started stay
unfinished, so ``run`` again resumes them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hyperjoule.errors import ExecutorError
from hyperjoule.execution._build import TaskBuilder
from hyperjoule.execution._checkpoint import CheckpointSink
from hyperjoule.execution._executor import Executor
from hyperjoule.execution._intermediate import PointCallback
from hyperjoule.execution._plan_state import PlanState
from hyperjoule.execution._recorder import Recorder
from hyperjoule.execution._result import AttemptResult
from hyperjoule.execution._task import RunTask
from hyperjoule.records import RunRecord, RunSpec, RunStatus
from hyperjoule.storage import AttemptCheckpoint, new_run_id

__all__ = ["PlannedRuns", "RunObserver", "RunSource", "run_slots"]

logger = logging.getLogger(__name__)

POLL_S = 0.2
"""How often the loop looks at the stop event while attempts run."""


class RunObserver(Protocol):
    """Receives progress events (the CLI draws its progress display from them)."""

    def study_started(self, study: str, session: str, plan: PlanState) -> None:
        """Called once before the first run."""

    def run_started(self, index: int, total: int, spec: RunSpec, run_id: str) -> None:
        """Called when a run (its first attempt) is handed to the executor; from 1."""

    def attempt_started(self, run_id: str, attempt: int, log: Path) -> None:
        """Called when an attempt (the first or a retry) is handed to the executor.

        ``log`` is where its output goes (``attempt-N.log`` in the run directory).
        """

    def run_finished(self, index: int, total: int, record: RunRecord) -> None:
        """Called when a run is recorded."""


class RunSource(Protocol):
    """Where the coordinator gets runs from: a planned list, or a search that proposes.

    Sources are used one after the other: the next becomes active once every run of the
    previous one is recorded (a search may warm-start from the runs before it).
    """

    def start(self) -> None:
        """Called once, when the source becomes active."""

    def next_spec(self) -> RunSpec | None:
        """The next run, or None when there is none now (more may come after results)."""

    @property
    def exhausted(self) -> bool:
        """True when no run will ever come from this source again."""

    def on_point(self, spec: RunSpec) -> PointCallback | None:
        """Receives a run's intermediate points (search pruning), or None."""

    def finished(self, spec: RunSpec, record: RunRecord) -> None:
        """A run of this source is recorded."""


class PlannedRuns:
    """The planned runs still to do, in plan order."""

    def __init__(self, specs: Sequence[RunSpec]) -> None:
        self._queue = deque(specs)

    def start(self) -> None:
        """Nothing to prepare."""

    def next_spec(self) -> RunSpec | None:
        """The next planned run."""
        return self._queue.popleft() if self._queue else None

    @property
    def exhausted(self) -> bool:
        """True when every planned run was handed out."""
        return not self._queue

    def on_point(self, spec: RunSpec) -> PointCallback | None:
        """Planned runs are not pruned."""
        return None

    def finished(self, spec: RunSpec, record: RunRecord) -> None:
        """Nothing to learn."""


@dataclass
class _InFlight:
    index: int
    spec: RunSpec
    record: RunRecord
    task: RunTask
    source: RunSource


def run_slots(
    sources: Sequence[RunSource],
    total: int,
    *,
    executor: Executor,
    builder: TaskBuilder,
    recorder: Recorder,
    stop: threading.Event,
    observer: RunObserver | None = None,
    on_record: Callable[[RunRecord], None] | None = None,
) -> None:
    """Run what ``sources`` give (up to ``executor.capacity`` at once) and record each.

    Args:
        sources: Planned runs and searches, used one after the other.
        total: Runs expected in all (for progress: ``run 3/20``).
        executor: Where attempts run.
        builder: Turns runs into tasks.
        recorder: Writes the records.
        stop: When set, in-flight attempts are stopped and no run starts.
        observer: Progress events.
        on_record: Called with every recorded run.

    Raises:
        StorageError: A record could not be written; in-flight attempts are cancelled.
    """
    active = deque(sources)
    pending: dict[Future[AttemptResult], _InFlight] = {}
    # Attempts report checkpoints from their own threads; only this thread writes.
    checkpoints: queue.SimpleQueue[tuple[str, AttemptCheckpoint]] = queue.SimpleQueue()

    def sink_for(run_id: str) -> CheckpointSink:
        return lambda checkpoint: checkpoints.put((run_id, checkpoint))

    def submit(task: RunTask, flight_source: RunSource, spec: RunSpec) -> Future[AttemptResult]:
        future = executor.submit(
            task, on_point=flight_source.on_point(spec), on_checkpoint=sink_for(task.run_id)
        )
        if observer is not None:
            log = Path(task.run_dir) / task.log_name
            observer.attempt_started(task.run_id, task.attempt, log)
        return future

    started = 0
    cancelled = False
    if active:
        active[0].start()
    try:
        while True:
            while not stop.is_set() and active and len(pending) < executor.capacity:
                source = active[0]
                spec = source.next_spec()
                if spec is None:
                    if source.exhausted and not any(f.source is source for f in pending.values()):
                        active.popleft()
                        if active:
                            active[0].start()
                        continue
                    break  # wait for results: the source may propose more then
                started += 1
                run_id = new_run_id()
                task = builder.build(spec, run_id, attempt=1)
                record = recorder.start(spec, task)
                if observer is not None:
                    observer.run_started(started, max(total, started), spec, run_id)
                flight = _InFlight(started, spec, record, task, source)
                pending[submit(task, source, spec)] = flight
            if not pending:
                break
            done, _ = wait(list(pending), timeout=POLL_S, return_when=FIRST_COMPLETED)
            while not checkpoints.empty():
                recorder.checkpoint(*checkpoints.get())
            if stop.is_set() and not cancelled:
                # Kill what runs now; every future resolves (interrupted or cancelled).
                cancelled = True
                executor.shutdown(cancel=True)
                done = set(pending)
            for future in done:
                flight = pending.pop(future)
                result = _result_of(future, flight.task)
                recorder.attempt(flight.record, flight.task, result)
                retry = _retry(flight, result, stop, builder)
                if retry is not None:
                    recorder.retrying(flight.record)
                    flight.task = retry
                    pending[submit(retry, flight.source, flight.spec)] = flight
                    continue
                recorder.finish(flight.record)
                flight.source.finished(flight.spec, flight.record)
                if observer is not None:
                    observer.run_finished(flight.index, max(total, started), flight.record)
                if on_record is not None:
                    on_record(flight.record)
    except BaseException:
        if pending and not cancelled:
            executor.shutdown(cancel=True)
        raise


def _result_of(future: Future[AttemptResult], task: RunTask) -> AttemptResult:
    """The attempt's result; a cancelled or unplaceable task becomes a result too."""
    if future.cancelled():
        return AttemptResult.interrupted(task.run_id, task.attempt, "stopped before it started")
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, ExecutorError):
        failed = AttemptResult.interrupted(task.run_id, task.attempt, str(error))
        failed.status = RunStatus.FAILED
        return failed
    raise error


def _retry(
    flight: _InFlight, result: AttemptResult, stop: threading.Event, builder: TaskBuilder
) -> RunTask | None:
    """The next attempt's task, or None when the run is over."""
    spec, record = flight.spec, flight.record
    status = result.status
    if status in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED, RunStatus.PRUNED):
        return None
    if result.attempt > spec.max_retries:
        return None
    if status.value not in spec.retry_on:
        logger.info(
            "run %s: %s is not retried (retry_on: %s)",
            record.run_id,
            status.value,
            ", ".join(spec.retry_on) or "nothing",
        )
        return None
    if stop.is_set():
        # A retry was due: the run is unfinished, so resume runs its slot again.
        record.status = RunStatus.INTERRUPTED
        record.error = f"stopped before attempt {result.attempt + 1} ({status.value} before)"
        return None
    logger.info("run %s attempt %d: %s; retrying", record.run_id, result.attempt, status.value)
    return builder.build(spec, record.run_id, attempt=result.attempt + 1)
