"""What a Ray task does on the worker node: one attempt, measured by that node's meters.

The task body is a generator: it first yields a :class:`NodeStarted` (where it runs), so
the coordinator knows the node of an attempt even when the node dies later, then the
:class:`NodeOutcome` of the attempt. The attempt itself is the same pure
:func:`~hyperjoule.execution.execute` the local executor runs, with this node's meters
(:class:`~hyperjoule.devices.NodeDevices`) and this node's orphan watchdog
(:class:`~hyperjoule.execution._reaper.GroupReaper`, detached, so Ray's killing of a
worker's children does not take it along): it holds a pipe from the Ray worker process,
so when the worker ends in any way (its node is removed, the coordinator is killed and
Ray ends its tasks, a forced cancel) every training process group of the attempt is
killed on this node.

A graceful stop (Ctrl-C on the coordinator) arrives as a stop file that
:func:`request_stop` creates on this node: Ray's own cancel of a generator task drops
what the task returns, and the coordinator wants the interrupted attempt's energy.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hyperjoule.devices import NodeDevices
from hyperjoule.execution._attempt import execute
from hyperjoule.execution._cooldown import DeviceCooldown
from hyperjoule.execution._proctree import child_subreaper
from hyperjoule.execution._ray_files import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_TOTAL_BYTES,
    PackedRunDir,
    pack_run_dir,
)
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.execution._result import AttemptResult, ExecutorInfo
from hyperjoule.execution._task import RunTask
from hyperjoule.meters import MeterConfig
from hyperjoule.storage import AttemptCheckpoint

__all__ = [
    "NodeCheckpoint",
    "NodeOptions",
    "NodeOutcome",
    "NodeProbe",
    "NodeStarted",
    "probe_node",
    "request_stop",
    "run_attempt_on_node",
    "stop_file",
]

logger = logging.getLogger(__name__)

_STOP_POLL_S = 0.05


@dataclass(frozen=True)
class NodeOptions:
    """How the coordinator wants attempts run on the nodes (picklable).

    Attributes:
        meter_config: Meter settings (each node creates its own meters from them).
        shared_marker: A file the coordinator wrote in the results directory; a node
            that sees it with ``shared_token`` in it writes into the run directory in
            place. None: never in place (every file travels back).
        shared_token: The content of ``shared_marker``.
        require_shared: A node that does not see ``shared_marker`` fails the attempt
            (``shared_results_dir: true``) instead of sending the files back.
        staging_root: Where a node without the results directory stages run
            directories (default: the node's temporary directory).
        max_file_bytes: Files larger than this stay on the node.
        max_total_bytes: At most this many bytes travel back per attempt.
        cpus_per_run: CPUs each attempt asked for; a node with room for two or more
            attempts may run others at the same time, so its CPU package and DRAM
            counters include their draw (the record says so).
    """

    meter_config: MeterConfig = field(default_factory=MeterConfig)
    shared_marker: str | None = None
    shared_token: str = ""
    require_shared: bool = False
    staging_root: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    cpus_per_run: float = 1.0


@dataclass(frozen=True)
class NodeStarted:
    """Yielded first: where the attempt runs (``provenance.executor``)."""

    info: ExecutorInfo
    in_place: bool


@dataclass(frozen=True)
class NodeCheckpoint:
    """Yielded while the attempt runs: its duration, CPU time and energy so far."""

    checkpoint: AttemptCheckpoint


@dataclass
class NodeOutcome:
    """Yielded last: the attempt's result and, unless written in place, its files."""

    result: AttemptResult
    packed: PackedRunDir | None = None


@dataclass(frozen=True)
class NodeProbe:
    """What a node reports before a study starts (see :func:`probe_node`)."""

    node_id: str
    host: str
    sees_results_dir: bool
    meters: list[str]
    estimate_only: list[str]
    hyperjoule_version: str


def _ray() -> Any:
    """The ``ray`` module (present: this code runs inside a Ray worker)."""
    return importlib.import_module("ray")


def _ray_context() -> tuple[str, tuple[int, ...]]:
    ray = _ray()
    node_id = str(ray.get_runtime_context().get_node_id())
    gpu_ids = tuple(int(g) for g in ray.get_gpu_ids())
    return node_id, gpu_ids


def _node_runs_others(node_id: str, cpus_per_run: float) -> bool:
    """True when this node has room for more than one attempt at a time."""
    for node in _ray().nodes():
        if node.get("NodeID") == node_id:
            cpus = float(node.get("Resources", {}).get("CPU", 0.0))
            return cpus_per_run <= 0 or cpus >= 2 * cpus_per_run
    return True  # unknown: do not claim the counters were ours alone


def _sees_marker(options: NodeOptions) -> bool:
    if options.shared_marker is None:
        return False
    try:
        return Path(options.shared_marker).read_text() == options.shared_token
    except OSError:
        return False


def stop_file(run_id: str, attempt: int) -> Path:
    """The node-local file whose existence asks the attempt to stop."""
    return Path(tempfile.gettempdir()) / "hyperjoule-ray-stop" / f"{run_id}-{attempt}"


def request_stop(run_id: str, attempt: int) -> None:
    """Ask the attempt running on this node to stop (runs as a tiny Ray task there)."""
    path = stop_file(run_id, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def run_attempt_on_node(task: RunTask, options: NodeOptions) -> Iterator[object]:
    """Run one attempt here.

    Yields :class:`NodeStarted`, a :class:`NodeCheckpoint` every few seconds while the
    attempt runs, then :class:`NodeOutcome`.
    """
    node_id, gpu_ids = _ray_context()
    in_place = _sees_marker(options)
    if options.require_shared and not in_place:
        raise RuntimeError(
            f"executor.shared_results_dir: node {socket.gethostname()} does not see the results "
            f"directory at {options.shared_marker}; mount it there or set it to false"
        )
    node_task = task
    staging: Path | None = None
    if not in_place:
        root = Path(options.staging_root or tempfile.gettempdir()) / "hyperjoule-ray"
        staging = root / task.study / task.run_id
        node_task = task.with_run_dir(str(staging))
    if task.gpus_per_run > 0:
        node_task = node_task.with_gpus(gpu_ids)
    info = ExecutorInfo(
        kind="ray", node_id=node_id, host=socket.gethostname(), gpu_ids=gpu_ids or None
    )
    yield NodeStarted(info, in_place)

    stop = threading.Event()
    box: list[AttemptResult | BaseException] = []
    # Checkpoints arrive on the attempt's thread; this generator yields them.
    checkpoints: queue.SimpleQueue[AttemptCheckpoint] = queue.SimpleQueue()
    stop_path = stop_file(task.run_id, task.attempt)
    devices = NodeDevices(options.meter_config)
    # Detached: Ray kills a worker's child processes when it ends the worker.
    reaper = GroupReaper(detached=True)
    reaper.start()
    ended_here = False
    try:
        # Subreaper: daemons an attempt leaves behind come to this worker, not init.
        with child_subreaper():

            def attempt() -> None:
                # Ray workers block SIGINT; the training process must not inherit that.
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                try:
                    box.append(
                        execute(
                            node_task,
                            devices,
                            stop=stop,
                            tracker=reaper,
                            on_checkpoint=checkpoints.put,
                        )
                    )
                except BaseException as e:  # handed to the task thread, raised there
                    box.append(e)

            worker = threading.Thread(target=attempt, name=f"attempt-{task.run_id}")
            worker.start()
            try:
                while worker.is_alive():
                    worker.join(_STOP_POLL_S)
                    if not stop.is_set() and stop_path.exists():
                        stop.set()
                    while not checkpoints.empty():
                        yield NodeCheckpoint(checkpoints.get())
            except KeyboardInterrupt:
                stop.set()  # Ray's cancel: stop the process group, keep the measurement
                worker.join()
            except BaseException:
                stop.set()  # Ray is ending this worker (SystemExit): the watchdog finishes
                raise
            ended_here = True
    finally:
        # Unless the attempt ended here, the watchdog kills every group still registered
        # (SIGTERM, grace, SIGKILL), even after this worker process is gone.
        reaper.close(kill_tracked=not ended_here)
        devices.close()
        stop_path.unlink(missing_ok=True)
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    result = replace(outcome, executor=info)
    if _node_runs_others(node_id, options.cpus_per_run):
        _mark_node_shared(result)
    packed: PackedRunDir | None = None
    if staging is not None:
        packed = pack_run_dir(
            staging,
            max_file_bytes=options.max_file_bytes,
            max_total_bytes=options.max_total_bytes,
        )
        if not packed.left_on_node:
            shutil.rmtree(staging, ignore_errors=True)
    yield NodeOutcome(result, packed)
    # The node's devices cool down while this task still holds them, so the next
    # attempt Ray places here starts on cool devices (the coordinator has its result).
    if task.cooldown is not None and task.cooldown.active and not stop.is_set():
        cooldown = DeviceCooldown(None, stop)
        cooldown.owe(["node"], task.cooldown)
        cooldown.pay(["node"], node_task.device_gpus)


def _mark_node_shared(result: AttemptResult) -> None:
    """CPU package and DRAM counters of a node running several attempts count them all."""
    for name in ("cpu_pkg", "cpu_dram"):
        component = result.energy.components.get(name)
        if component is None or component.energy_j is None or component.method != "counter":
            continue
        if component.attribution != "exclusive":
            continue
        component.attribution = "combined"
        note = "this Ray node may run other attempts at the same time; they are included"
        component.reason = f"{component.reason}; {note}" if component.reason else note


def probe_node(options: NodeOptions) -> NodeProbe:
    """Report this node's meters and whether it sees the results directory."""
    from hyperjoule.meters import EstimateMeter, create_meters
    from hyperjoule.provenance import hyperjoule_version

    node_id, _ = _ray_context()
    meters = create_meters(options.meter_config, os.environ)
    try:
        names = [m.name for m in meters]
        estimate_only = [m.name for m in meters if isinstance(m, EstimateMeter)]
    finally:
        for meter in meters:
            meter.close()
    return NodeProbe(
        node_id=node_id,
        host=socket.gethostname(),
        sees_results_dir=_sees_marker(options),
        meters=names,
        estimate_only=estimate_only,
        hyperjoule_version=hyperjoule_version(),
    )
