"""The Ray executor: each attempt is a Ray task on a worker node of a Ray cluster.

Each attempt is a Ray task that asks for its resources (``num_cpus``, ``num_gpus``,
custom resources) and runs :func:`~hyperjoule.execution._ray_node.run_attempt_on_node`
there: the same pure attempt executor as the local executor, with that node's meters.
The result comes back typed, with the run directory's files unless every node writes
into a results directory they share. Only the coordinator records anything.

Failure semantics:

* a node that dies mid-attempt resolves the attempt as ``interrupted`` (its node is
  known: the task reports where it runs as soon as it starts), and resume runs the slot
  again; Ray never retries a task by itself (``max_retries=0``), so no attempt runs twice;
* ``shutdown(cancel=True)`` (Ctrl-C) cancels the tasks that have not started and asks
  the running ones to stop on their node, which kills their process groups and returns
  the measured, interrupted result; after ``stop_grace_s`` the tasks are force-cancelled
  (their worker processes die, and each node's watchdog kills what they started);
* a coordinator killed with SIGKILL is a dead Ray driver: Ray ends its tasks' worker
  processes, and the same per-node watchdog kills the training process groups.
"""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hyperjoule._imports import import_optional
from hyperjoule.config import ExecutorConfig
from hyperjoule.devices import NodeDevices
from hyperjoule.errors import ExecutorError, PreflightError
from hyperjoule.execution._checkpoint import CheckpointSink
from hyperjoule.execution._executor import Executor
from hyperjoule.execution._intermediate import PointCallback
from hyperjoule.execution._ray_files import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_TOTAL_BYTES,
    unpack_run_dir,
)
from hyperjoule.execution._ray_node import (
    NodeCheckpoint,
    NodeOptions,
    NodeOutcome,
    NodeProbe,
    NodeStarted,
    probe_node,
    request_stop,
    run_attempt_on_node,
)
from hyperjoule.execution._result import AttemptResult, ExecutorInfo
from hyperjoule.execution._task import RunTask
from hyperjoule.execution._tracking import GroupTracker
from hyperjoule.meters import Baseline, MeterConfig
from hyperjoule.storage import AttemptCheckpoint

__all__ = ["RayExecutor", "RaySettings", "create_ray_executor"]

logger = logging.getLogger(__name__)

_MARKER_PREFIX = ".hyperjoule-ray-"


@dataclass(frozen=True)
class RaySettings:
    """How the Ray executor connects and what each attempt asks for.

    Attributes:
        address: ``"auto"`` (the cluster ``ray start`` runs on this machine),
            ``"HOST:PORT"``, or None to start a private Ray instance on this machine.
        cpus_per_run: CPUs each attempt requests (``num_cpus``).
        gpus_per_run: Whole GPUs each attempt requests (``num_gpus``); a task's own
            ``gpus_per_run`` wins when it sets one.
        resources: Custom Ray resources each attempt requests (placing runs on nodes).
        shared_results_dir: True: every node must see the results directory and writes
            in place; False: files always travel back; None: each node checks.
        staging_dir: Where nodes that do not see the results directory write run
            directories (default: each node's temporary directory).
        max_file_bytes: Files larger than this stay on their node.
        max_total_bytes: At most this many bytes travel back per attempt.
        stop_grace_s: After asking running attempts to stop, how long to wait for their
            measured results before their tasks are force-cancelled.
        max_in_flight: At most this many attempts at once (None: what the nodes fit).
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: int = 0
    resources: dict[str, float] = field(default_factory=dict)
    shared_results_dir: bool | None = None
    staging_dir: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    stop_grace_s: float = 30.0
    max_in_flight: int | None = None


@dataclass
class _InFlight:
    task: RunTask
    future: Future[AttemptResult]
    generator: Any
    on_checkpoint: CheckpointSink | None = None
    info: ExecutorInfo | None = None
    checkpoint: AttemptCheckpoint | None = None
    thread: threading.Thread | None = None


class RayExecutor(Executor):
    """Runs attempts as Ray tasks across the nodes of a Ray cluster.

    Args:
        settings: Address and per-run resources.
        results_dir: The coordinator's results directory (nodes that see it write in
            place); None only with ``shared_results_dir=False``.
        meter_config: Meter settings every node uses for its own meters.
        allow_estimates: Accept nodes whose CPU figure can only be estimated.

    Raises:
        PreflightError: Ray is not installed, the cluster cannot be reached, no node
            can run an attempt, or a node could only estimate CPU energy and estimates
            are not allowed.
    """

    kind = "ray"

    def __init__(
        self,
        settings: RaySettings,
        *,
        results_dir: Path | None,
        meter_config: MeterConfig | None = None,
        allow_estimates: bool = False,
    ) -> None:
        self._ray: Any = import_optional("ray", extra="ray", feature="--executor ray")
        self._settings = settings
        self._lock = threading.Lock()
        self._in_flight: dict[str, _InFlight] = {}
        self._closed = False
        self._owns_connection = self._connect(settings.address)
        # Nodes that see this file (with this token) write into the results dir in place.
        self._token = secrets.token_hex(8)
        self._marker: Path | None = None
        self._marker_written = False
        if settings.shared_results_dir is not False and results_dir is not None:
            self._marker = Path(results_dir).absolute() / f"{_MARKER_PREFIX}{self._token}"
        try:
            self._write_marker()
            self._options = NodeOptions(
                meter_config=meter_config or MeterConfig(),
                shared_marker=str(self._marker) if self._marker is not None else None,
                shared_token=self._token,
                require_shared=settings.shared_results_dir is True,
                staging_root=settings.staging_dir,
                max_file_bytes=settings.max_file_bytes,
                max_total_bytes=settings.max_total_bytes,
                cpus_per_run=settings.cpus_per_run,
            )
            self.probes = self._probe_nodes(allow_estimates)
            self._capacity = self._fit_count()
            if settings.max_in_flight is not None:
                self._capacity = min(self._capacity, settings.max_in_flight)
        except BaseException:
            self._disconnect()
            raise
        self._remote = self._ray.remote(run_attempt_on_node)
        self._stop_remote = self._ray.remote(request_stop)

    # -- connection and preflight -------------------------------------------------------

    def _connect(self, address: str | None) -> bool:
        ray = self._ray
        if ray.is_initialized():
            return False  # a library caller (or a test) connected already: leave it be
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "a new local Ray instance"
            raise PreflightError(
                f"--executor ray: cannot connect to {where}: {e}; start the cluster with "
                "'ray start --head' (and 'ray start --address HEAD:PORT' on each worker) or "
                "pass --address HOST:PORT"
            ) from e
        return True

    def _write_marker(self) -> None:
        """Write the marker once its directory exists (the results dir may not, yet)."""
        if self._marker is None or self._marker_written or not self._marker.parent.is_dir():
            return
        self._marker.write_text(self._token)
        self._marker_written = True

    def _disconnect(self) -> None:
        if self._marker is not None and self._marker_written:
            self._marker.unlink(missing_ok=True)
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()

    def _request(self, gpus: int | None = None) -> dict[str, float]:
        """Resources one attempt asks for (``gpus`` overrides ``gpus_per_run``)."""
        gpus = self._settings.gpus_per_run if gpus is None else gpus
        want = {"CPU": self._settings.cpus_per_run, "GPU": float(gpus)}
        return {**want, **self._settings.resources}

    def _fits(self, node: dict[str, Any], request: dict[str, float] | None = None) -> bool:
        have: dict[str, float] = node.get("Resources", {})
        want = self._request() if request is None else request
        return all(have.get(name, 0.0) >= amount for name, amount in want.items() if amount)

    def _fit_count(self) -> int:
        """How many attempts the cluster's live nodes can run at once (at least 1)."""
        total = 0
        for node in self._ray.nodes():
            if not node.get("Alive") or not self._fits(node):
                continue
            have = node["Resources"]
            total += int(
                min(
                    have.get(name, 0.0) // amount
                    for name, amount in self._request().items()
                    if amount
                )
            )
        return max(1, total)

    def _probe_nodes(self, allow_estimates: bool) -> list[NodeProbe]:
        """Ask every node that can run an attempt about its meters and the results dir."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and self._fits(n)]
        if not nodes:
            raise PreflightError(
                f"--executor ray: no live node of the Ray cluster offers {self._request()} "
                "for one run; lower cpus_per_run/gpus_per_run or add nodes"
            )
        remote = ray.remote(probe_node)
        refs = [
            remote.options(
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
            ).remote(self._options)
            for n in nodes
        ]
        probes: list[NodeProbe] = ray.get(refs, timeout=120)
        for probe in probes:
            if probe.estimate_only and not allow_estimates:
                raise PreflightError(
                    f"--executor ray: node {probe.host} ({probe.node_id[:12]}) could only "
                    f"estimate {', '.join(probe.estimate_only)}; make its RAPL counters "
                    "readable or set 'allow_estimates: true' in the study"
                )
            if self._options.require_shared and self._marker_written and not probe.sees_results_dir:
                raise PreflightError(
                    f"executor.shared_results_dir: node {probe.host} does not see the results "
                    "directory at the same path; mount it there or set it to false"
                )
        return probes

    # -- Executor -----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Attempts the cluster's nodes can run at once when the study started."""
        return self._capacity

    def submit(
        self,
        task: RunTask,
        *,
        on_point: PointCallback | None = None,
        on_checkpoint: CheckpointSink | None = None,
    ) -> Future[AttemptResult]:
        """Start ``task`` as a Ray task; its future resolves when its files are back.

        ``on_checkpoint`` receives the checkpoints the node sends while the attempt runs
        (the last one is what an attempt on a node that dies keeps). ``on_point`` is not
        called: intermediate points of a remote attempt come back with its result (a
        search on Ray records them but cannot prune live).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the Ray executor was shut down")
            self._write_marker()
            future: Future[AttemptResult] = Future()
            gpus = task.gpus_per_run or self._settings.gpus_per_run
            if gpus and gpus != task.gpus_per_run:
                task = replace(task, gpus_per_run=gpus)
            request = self._request(gpus)
            if not any(n.get("Alive") and self._fits(n, request) for n in self._ray.nodes()):
                # Ray would keep an infeasible task pending for ever.
                future.set_exception(
                    ExecutorError(
                        f"run {task.run_id}: no live node of the Ray cluster offers {request}; "
                        "lower gpus_per_run/cpus_per_run or add nodes that have them"
                    )
                )
                return future
            options: dict[str, Any] = {
                "num_cpus": self._settings.cpus_per_run,
                "num_gpus": gpus,
                "max_retries": 0,  # a retried task would run the same attempt twice
                "retry_exceptions": False,
            }
            if self._settings.resources:
                options["resources"] = dict(self._settings.resources)
            generator = self._remote.options(**options).remote(task, self._options)
            entry = _InFlight(task, future, generator, on_checkpoint)
            key = f"{task.run_id}/{task.attempt}"
            self._in_flight[key] = entry
            entry.thread = threading.Thread(
                target=self._follow, args=(key, entry), name=f"ray-{key}", daemon=True
            )
            entry.thread.start()
        return future

    def _follow(self, key: str, entry: _InFlight) -> None:
        """Wait for one task's reports and resolve its future exactly once."""
        ray = self._ray
        exceptions = ray.exceptions
        task = entry.task
        try:
            for ref in entry.generator:
                report = ray.get(ref)
                if isinstance(report, NodeStarted):
                    entry.info = report.info
                elif isinstance(report, NodeCheckpoint):
                    entry.checkpoint = report.checkpoint
                    if entry.on_checkpoint is not None:
                        entry.on_checkpoint(report.checkpoint)
                elif isinstance(report, NodeOutcome):
                    # The task may still cool its node down: the result is final now.
                    entry.future.set_result(self._land(task, report))
                    return
            raise RuntimeError("the task ended without a result")
        except exceptions.TaskCancelledError:
            if entry.info is None:
                entry.future.cancel()
            else:
                entry.future.set_result(
                    self._interrupted(entry, "stopped: its Ray task was cancelled")
                )
        except (
            exceptions.NodeDiedError,
            exceptions.WorkerCrashedError,
            exceptions.ObjectLostError,
            exceptions.OwnerDiedError,
            exceptions.RaySystemError,
        ) as e:
            why = type(e).__name__
            where = entry.info.host if entry.info is not None else "its node"
            logger.warning("attempt %s: %s on %s; recorded as interrupted", key, why, where)
            entry.future.set_result(
                self._interrupted(entry, f"the Ray worker node died mid-run ({why})")
            )
        except BaseException as e:  # a bug or a broken node environment: say which
            entry.future.set_exception(
                ExecutorError(f"Ray task of run {task.run_id} attempt {task.attempt} failed: {e}")
            )
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def _interrupted(self, entry: _InFlight, reason: str) -> AttemptResult:
        """An attempt whose result never came back: its last checkpoint's figures, if any."""
        checkpoint = entry.checkpoint
        if checkpoint is None:
            result = AttemptResult.interrupted(
                entry.task.run_id, entry.task.attempt, f"{reason}; no measurement came back"
            )
        else:
            result = AttemptResult.interrupted(
                entry.task.run_id,
                entry.task.attempt,
                f"{reason}; figures up to its last checkpoint ({checkpoint.at})",
            )
            result = replace(
                result,
                started_at=checkpoint.started_at,
                ended_at=checkpoint.at,
                duration_s=checkpoint.duration_s,
                cpu_time_s=checkpoint.cpu_time_s,
                energy=checkpoint.energy,
            )
        return replace(result, executor=entry.info or ExecutorInfo("ray", "", ""))

    def _land(self, task: RunTask, outcome: NodeOutcome) -> AttemptResult:
        """Bring the attempt's files into the coordinator's run directory."""
        result = outcome.result
        packed = outcome.packed
        if packed is None:
            return result  # written in place on a shared file system
        run_dir = Path(task.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        written = unpack_run_dir(packed.files, run_dir)
        info = result.executor
        if info is not None and packed.left_on_node:
            info = replace(info, files_on_node=dict(packed.left_on_node))
        return replace(result, files=sorted(written), executor=info)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop accepting tasks; with ``cancel``, stop every attempt in flight."""
        with self._lock:
            if self._closed and not self._in_flight:
                return
            self._closed = True
            entries = list(self._in_flight.values())
        if cancel:
            self._stop_all(entries)
        for entry in entries:
            if entry.thread is not None:
                entry.thread.join()
        self._disconnect()

    def _stop_all(self, entries: list[_InFlight]) -> None:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        for entry in entries:
            if entry.info is None:
                ray.cancel(entry.generator)  # not started: never runs
                continue
            strategy = NodeAffinitySchedulingStrategy(entry.info.node_id, soft=False)
            self._stop_remote.options(num_cpus=0, scheduling_strategy=strategy).remote(
                entry.task.run_id, entry.task.attempt
            )
        for entry in entries:
            if entry.thread is not None:
                entry.thread.join(self._settings.stop_grace_s)
        for entry in entries:
            if entry.thread is not None and entry.thread.is_alive():
                logger.warning("run %s did not stop in time: force-cancelling", entry.task.run_id)
                ray.cancel(entry.generator, force=True)


def create_ray_executor(
    config: ExecutorConfig,
    *,
    devices: NodeDevices | None = None,
    tracker: GroupTracker | None = None,
    baseline: Baseline | None = None,
    results_dir: Path | None = None,
    allow_estimates: bool = False,
) -> RayExecutor:
    """The Ray executor a study's ``executor: {kind: ray, ...}`` describes.

    ``tracker`` and ``baseline`` belong to the coordinator's machine: each node runs its
    own watchdog and measures with its own meters, built from ``devices.config``.

    Raises:
        PreflightError: Ray is missing or the cluster cannot be used (see
            :class:`RayExecutor`).
    """
    # Nodes make their own meters; only the study's settings travel (not this machine's
    # GPU selection or sysfs paths).
    meter_config = (
        MeterConfig(cpu_watts_per_core=devices.config.cpu_watts_per_core)
        if devices is not None
        else None
    )
    del devices, tracker, baseline  # the nodes have their own
    settings = RaySettings(
        address=config.address,
        cpus_per_run=config.cpus_per_run if config.cpus_per_run is not None else 1.0,
        gpus_per_run=config.gpus_per_run,
        resources=dict(config.resources),
        shared_results_dir=config.shared_results_dir,
        max_in_flight=config.jobs,
    )
    if results_dir is None:  # nowhere to check sharing: every file travels back
        settings = replace(settings, shared_results_dir=False)
    return RayExecutor(
        settings,
        results_dir=results_dir,
        allow_estimates=allow_estimates,
        meter_config=meter_config,
    )
