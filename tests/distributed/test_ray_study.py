"""Studies on a real two-node Ray cluster: every run once, files back, node deaths, SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore
from ray_cluster import RayCluster

pytestmark = pytest.mark.slow


def _records(project: Project) -> list[RunRecord]:
    with ResultsStore(project.results, create=False) as store:
        return list(store.iter_runs())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def _sleepy(project: Project, sleep_s: float, behaviour: str = "ok") -> None:
    block = target_block(behaviour)
    block["args"] = ["--dataset", "toy", "--behaviour", behaviour, "--sleep", str(sleep_s)]
    project.write_targets({"toy": block})


def _started_logs(project: Project) -> list[Path]:
    return [p for p in project.results.glob("s/*/*/attempt-1.log") if p.stat().st_size > 0]


def _coordinator(project: Project, study: Path, address: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "hyperjoule", "run", str(study)]
    argv += ["--results-dir", str(project.results), "--executor", "ray", "--address", address]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_study_on_two_nodes_records_every_run_once_with_its_files(
    two_nodes: RayCluster, project: Project
) -> None:
    _sleepy(project, 1.0)
    study = project.write_study(
        [
            {"target": "toy", "model": "small", "mode": "default", "runs": 2},
            {"target": "toy", "model": "large", "mode": "mutation", "mutate": ["lr"], "runs": 2},
        ],
        executor={"kind": "ray", "address": two_nodes.address, "shared_results_dir": False},
    )
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    records = _records(project)
    assert len(records) == 4 and len({r.slot_id for r in records}) == 4
    assert all(r.status is RunStatus.SUCCEEDED for r in records), [r.error for r in records]
    nodes = {two_nodes.node_id("node_a"), two_nodes.node_id("node_b")}
    for record in records:
        executor = record.provenance["executor"]
        assert executor["kind"] == "ray" and executor["node_id"] in nodes
        run_dir = Path(record.run_dir or "")
        # The files came back from the node's staging directory into the results dir.
        log = (run_dir / "attempt-1.log").read_text()
        assert "Test Accuracy" in log
        assert (run_dir / "run.json").is_file()
    assert {r.provenance["executor"]["node_id"] for r in records} == nodes


def test_a_dead_node_interrupts_its_run_and_resume_completes(
    two_nodes: RayCluster, project: Project
) -> None:
    _sleepy(project, 8.0)
    study = project.write_study([{"target": "toy", "model": "small", "runs": 2}])
    coordinator = _coordinator(project, study, two_nodes.address)
    try:
        _wait_until(lambda: len(_started_logs(project)) == 2)
        doomed = two_nodes.node_id("node_b")
        two_nodes.kill_node("node_b")
        _, stderr = coordinator.communicate(timeout=90)
        assert coordinator.returncode == 0, stderr.decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            coordinator.kill()
        coordinator.communicate()
    records = {r.status: r for r in _records(project)}
    assert sorted(s.value for s in records) == ["interrupted", "succeeded"]
    lost = records[RunStatus.INTERRUPTED]
    assert lost.provenance["executor"]["node_id"] == doomed
    assert "node died" in (lost.error or "")
    # Resume runs the interrupted slot again, on the node that is left.
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    final = [r for r in _records(project) if r.status is RunStatus.SUCCEEDED]
    assert sorted(r.slot_id for r in final) == sorted({r.slot_id for r in _records(project)})
    assert len(final) == 2


def test_sigkill_of_the_coordinator_leaves_no_training_process(
    two_nodes: RayCluster, project: Project
) -> None:
    _sleepy(project, 0.0, behaviour="hang")  # each run starts a child, then sleeps 600 s
    study = project.write_study([{"target": "toy", "model": "small", "runs": 2}])
    coordinator = _coordinator(project, study, two_nodes.address)
    pids: list[int] = []
    try:
        pid_files = lambda: list(project.results.glob("s/*/*/pids.txt"))  # noqa: E731
        _wait_until(lambda: len(pid_files()) == 2 and all(p.read_text() for p in pid_files()))
        pids = [int(p) for f in pid_files() for p in f.read_text().split()]
        assert all(_alive(p) for p in pids)
        coordinator.send_signal(signal.SIGKILL)
        coordinator.communicate(timeout=10)
        _wait_until(lambda: not any(_alive(p) for p in pids), timeout_s=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            coordinator.kill()
        coordinator.communicate()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_the_runs_on_every_node_and_records_them_measured(
    two_nodes: RayCluster, project: Project
) -> None:
    _sleepy(project, 0.0, behaviour="hang")
    study = project.write_study([{"target": "toy", "model": "small", "runs": 2}])
    coordinator = _coordinator(project, study, two_nodes.address)
    pids: list[int] = []
    try:
        pid_files = lambda: list(project.results.glob("s/*/*/pids.txt"))  # noqa: E731
        _wait_until(lambda: len(pid_files()) == 2 and all(p.read_text() for p in pid_files()))
        pids = [int(p) for f in pid_files() for p in f.read_text().split()]
        coordinator.send_signal(signal.SIGINT)
        _, stderr = coordinator.communicate(timeout=60)
        assert coordinator.returncode == 130, stderr.decode()
        assert not any(_alive(p) for p in pids)
    finally:
        with contextlib.suppress(ProcessLookupError):
            coordinator.kill()
        coordinator.communicate()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    records = _records(project)
    assert [r.status for r in records] == [RunStatus.INTERRUPTED] * 2
    for record in records:
        assert record.provenance["executor"]["kind"] == "ray"
        # Stopped on its node and measured there: the energy came back with the result.
        assert record.energy.components, record.error
