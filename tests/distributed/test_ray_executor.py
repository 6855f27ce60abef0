"""The Ray executor passes the Executor contract on a real two-node Ray cluster."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import pytest

from hyperjoule.execution import Executor
from hyperjoule.execution._ray import RayExecutor, RaySettings
from hyperjoule.records import RunStatus
from hyperjoule.storage import AttemptCheckpoint
from hyperjoule.testing.executors import (
    ExecutorContract,
    ExecutorFactory,
    make_task,
    process_alive,
    wait_for_path,
)
from ray_cluster import RayCluster

pytestmark = pytest.mark.slow


def _factory(
    cluster: RayCluster, results_dir: Path, shared: bool | None, staging: Path | None = None
) -> ExecutorFactory:
    def make(capacity: int, gpus: Sequence[int]) -> Executor:
        # Capacity comes from the cluster: one CPU per node; one node when capacity is 1.
        resources = {"node_a": 1.0} if capacity == 1 else {}
        settings = RaySettings(
            address=cluster.address,
            resources=resources,
            shared_results_dir=shared,
            staging_dir=str(staging) if staging is not None else None,
            stop_grace_s=10,
        )
        return RayExecutor(settings, results_dir=results_dir, allow_estimates=True)

    return make


class TestRayExecutorSharedResults(ExecutorContract):
    """Every node sees the results directory: attempts write their files in place."""

    @pytest.fixture
    def executor_factory(self, two_nodes: RayCluster, tmp_path: Path) -> ExecutorFactory:
        return _factory(two_nodes, tmp_path, None)


class TestRayExecutorReturnedFiles(ExecutorContract):
    """No shared results directory: every file travels back with the result."""

    @pytest.fixture
    def executor_factory(self, two_nodes: RayCluster, tmp_path: Path) -> ExecutorFactory:
        return _factory(two_nodes, tmp_path, False, tmp_path / "node-staging")

    def test_shutdown_cancel_stops_everything(self, make: ExecutorFactory, tmp_path: Path) -> None:
        # The contract's version waits for files in the coordinator's run directory
        # while the attempts run; here they appear there only when the attempts end.
        executor = make(2, ())
        running = [make_task(tmp_path, sleep_s=60) for _ in range(2)]
        queued = make_task(tmp_path, sleep_s=60)
        futures = [executor.submit(t) for t in running]
        late = executor.submit(queued)
        for task in running:
            wait_for_path(
                tmp_path / "node-staging" / "hyperjoule-ray" / task.study / task.run_id / "pid",
                timeout_s=60.0,
            )
        executor.shutdown(cancel=True)
        assert late.cancelled() or late.result(timeout=1).status is RunStatus.INTERRUPTED
        for future, task in zip(futures, running, strict=True):
            result = future.result(timeout=30)
            assert result.status is RunStatus.INTERRUPTED
            # The interrupted attempt's files came back, its process is gone.
            assert not process_alive(int((Path(task.run_dir) / "pid").read_text()))


def test_a_node_dying_mid_run_interrupts_that_attempt_only(
    two_nodes: RayCluster, tmp_path: Path
) -> None:
    executor = _factory(two_nodes, tmp_path, None)(2, ())
    try:
        tasks = [make_task(tmp_path, sleep_s=60) for _ in range(2)]
        checkpoints: dict[str, list[AttemptCheckpoint]] = {t.run_id: [] for t in tasks}
        futures = [executor.submit(t, on_checkpoint=checkpoints[t.run_id].append) for t in tasks]
        deadline = time.monotonic() + 60
        while not all(checkpoints.values()):  # both attempts are measured so far
            assert time.monotonic() < deadline, "no checkpoint came from the nodes"
            time.sleep(0.1)
        doomed, survivor = two_nodes.node_id("node_b"), two_nodes.node_id("node_a")
        two_nodes.kill_node("node_b")
        done, _ = wait(futures, timeout=30, return_when=FIRST_COMPLETED)
        assert len(done) == 1, "the attempt on the dead node did not resolve"
        dead = done.pop().result()
        assert dead.executor is not None and dead.executor.node_id == doomed
        assert dead.status is RunStatus.INTERRUPTED
        assert dead.reason is not None and "node died" in dead.reason
        # Its figures are those of the last checkpoint that came back before the node died.
        assert "last checkpoint" in dead.reason
        assert dead.duration_s > 0 and dead.energy.components
        dead_task = next(t for t in tasks if t.run_id == dead.run_id)
        # Its training process dies with the node's worker (the watchdog: TERM, grace, KILL).
        pid = int((Path(dead_task.run_dir) / "pid").read_text())
        deadline = time.monotonic() + 20
        while process_alive(pid):
            assert time.monotonic() < deadline, f"training process {pid} outlived its node"
            time.sleep(0.1)
        # The other node goes on running its attempt.
        other = next(f for t, f in zip(tasks, futures, strict=True) if t is not dead_task)
        assert not other.done()
    finally:
        executor.shutdown(cancel=True)
    result = other.result(timeout=1)
    assert result.executor is not None and result.executor.node_id == survivor
    assert result.status is RunStatus.INTERRUPTED  # stopped by the shutdown, measured
    assert result.energy.components


def test_files_over_the_limit_stay_on_the_node_and_the_result_says_where(
    two_nodes: RayCluster, tmp_path: Path
) -> None:
    settings = RaySettings(
        address=two_nodes.address,
        shared_results_dir=False,
        staging_dir=str(tmp_path / "node-staging"),
        max_file_bytes=16,  # the pid file travels, the log does not
    )
    executor = RayExecutor(settings, results_dir=tmp_path, allow_estimates=True)
    try:
        task = make_task(tmp_path)
        result = executor.submit(task).result(timeout=60)
    finally:
        executor.shutdown()
    assert result.status is RunStatus.SUCCEEDED and result.metrics == {"accuracy": 0.9}
    assert result.executor is not None and result.executor.files_on_node is not None
    on_node = Path(result.executor.files_on_node[result.log])
    assert on_node.is_relative_to(tmp_path / "node-staging") and "accuracy" in on_node.read_text()
    assert not (Path(task.run_dir) / result.log).exists()
    assert (Path(task.run_dir) / "pid").is_file() and "pid" in result.files
    assert result.executor.to_dict()["files_on_node"] == {result.log: str(on_node)}
