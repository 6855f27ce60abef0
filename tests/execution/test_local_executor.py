"""The local executor passes the Executor contract (fake meters stand in for hardware)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from hyperjoule.devices import NodeDevices
from hyperjoule.execution import Executor, LocalExecutor, default_jobs
from hyperjoule.meters import FakeMeter
from hyperjoule.testing.executors import ExecutorContract, ExecutorFactory, make_task


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor_factory(self) -> ExecutorFactory:
        def make(capacity: int, gpus: Sequence[int]) -> Executor:
            devices = NodeDevices(fixed=[FakeMeter({"gpu": 100.0, "cpu_pkg": 20.0})])
            return LocalExecutor(devices, jobs=capacity, gpus=gpus)

        return make


def test_default_jobs_is_gpus_over_gpus_per_run() -> None:
    assert default_jobs((0, 1, 2, 3), 2) == 2
    assert default_jobs((0, 1, 2), 2) == 1
    assert default_jobs((), 1) == 1
    assert default_jobs((0, 1), 0) == 1


def test_runs_naming_the_same_gpu_never_overlap(tmp_path: Path) -> None:
    devices = NodeDevices(fixed=[FakeMeter({"gpu": 100.0})])
    with LocalExecutor(devices, jobs=2) as executor:
        tasks = [replace(make_task(tmp_path, sleep_s=0.6), gpus=(0,)) for _ in range(2)]
        results = [f.result(timeout=60) for f in [executor.submit(t) for t in tasks]]
    assert all(r.executor is not None and r.executor.gpu_ids == (0,) for r in results)
    spans = []
    for line in (tmp_path / "marks.txt").read_text().splitlines():
        kind, stamp, gpus, _run_id = line.split()
        assert kind == "end" or gpus == "0"  # each saw only GPU 0
        spans.append((kind, float(stamp)))
    kinds = [k for k, _ in sorted(spans, key=lambda s: s[1])]
    assert kinds == ["start", "end", "start", "end"]  # one after the other
