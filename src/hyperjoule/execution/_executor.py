"""Where attempts run: the :class:`Executor` contract shared by every back-end.

The coordinator submits one :class:`~hyperjoule.execution.RunTask` per attempt and gets
a :class:`concurrent.futures.Future` that resolves to an
:class:`~hyperjoule.execution.AttemptResult`. Every executor runs the same pure attempt
executor (:func:`~hyperjoule.execution.execute`) with the meters of the node it runs
on; none writes to the database or the run record (the coordinator's recorder does).
"""

from __future__ import annotations

import abc
from concurrent.futures import Future

from hyperjoule.execution._checkpoint import CheckpointSink
from hyperjoule.execution._intermediate import PointCallback
from hyperjoule.execution._result import AttemptResult
from hyperjoule.execution._task import RunTask
from hyperjoule.meters import Baseline

__all__ = ["Executor"]


class Executor(abc.ABC):
    """Runs attempts, up to :attr:`capacity` at a time.

    The contract every implementation keeps (checked by
    :mod:`hyperjoule.testing.executors`):

    * ``submit(task)`` never blocks on the attempt and never raises for a failure of the
      training process: the future resolves to an ``AttemptResult`` with the outcome
      class (``failed``, ``timeout``, ...). It raises ``RuntimeError`` after
      :meth:`shutdown`. A task the executor can never place (more GPUs than any node
      has) resolves with an exception (``ExecutorError``), not a hang.
    * At most ``capacity`` attempts run at once; further tasks wait in submission
      order. Concurrent attempts get disjoint GPUs: a task with ``gpus_per_run: K`` gets
      K whole GPUs no other running attempt holds, set in its ``CUDA_VISIBLE_DEVICES``
      and in ``AttemptResult.executor.gpu_ids``.
    * Everything an attempt writes ends up under ``task.run_dir`` on the coordinator's
      file system (logs, metrics file, ``energy/*.csv``, background logs), named in
      ``AttemptResult.files``, before its future resolves.
    * ``shutdown(cancel=True)`` cancels the futures of tasks that have not started
      (``future.cancelled()``), stops the running ones by killing their process groups
      (foreground and backgrounds: SIGTERM, grace, SIGKILL) and resolves their futures
      with ``status == interrupted``; no process of any attempt outlives it.
      ``shutdown(cancel=False)`` waits for every submitted task. Both are idempotent.
    * Every future resolves exactly once; no attempt runs twice.
    * A task is executed as given: an executor changes only ``assigned_gpus`` and, on
      a remote node, ``run_dir`` (files are then copied back to the original).
    """

    kind: str = "abstract"

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many attempts can run at once (at least 1)."""

    @abc.abstractmethod
    def submit(
        self,
        task: RunTask,
        *,
        on_point: PointCallback | None = None,
        on_checkpoint: CheckpointSink | None = None,
    ) -> Future[AttemptResult]:
        """Queue ``task``; return the future of its result.

        ``on_checkpoint`` receives the running attempt's duration, CPU time and energy so
        far every few seconds, on any thread (the coordinator stores them, so a killed
        runner loses seconds of accounting); an executor may ignore it.

        ``on_point`` (search runs with ``task.intermediate_step``) receives each
        intermediate metrics point while the attempt runs, on any thread; when it
        returns True the attempt is stopped and comes back ``pruned``. An executor that
        cannot deliver points live may ignore it: the points still come back in
        ``AttemptResult.intermediate``.

        Raises:
            RuntimeError: The executor was shut down.
        """

    @abc.abstractmethod
    def shutdown(self, cancel: bool = False) -> None:
        """Stop accepting tasks; cancel and stop in-flight ones when ``cancel``.

        Returns when no attempt of this executor runs any more.
        """

    def use_baseline(self, baseline: Baseline | None) -> None:  # noqa: B027 - optional hook
        """Use this idle baseline for net energy and until-idle cooldowns (local nodes).

        Remote executors measure on their own nodes and may ignore it.
        """

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # Leaving by an exception (Ctrl-C included) stops what is in flight.
        self.shutdown(cancel=exc_type is not None)
