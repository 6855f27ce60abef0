"""The local executor passes the Executor contract (fake meters stand in for hardware)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hyperjoule.devices import NodeDevices
from hyperjoule.execution import Executor, LocalExecutor, default_jobs
from hyperjoule.meters import FakeMeter
from hyperjoule.testing.executors import ExecutorContract, ExecutorFactory


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
