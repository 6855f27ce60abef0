"""The attempt executor reports checkpoints of a running attempt (real process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperjoule.devices import NodeDevices
from hyperjoule.execution._attempt import execute
from hyperjoule.execution._checkpoint import CHECKPOINT_PERIOD_S, FIRST_CHECKPOINT_S
from hyperjoule.meters import EstimateMeter, FakeMeter
from hyperjoule.storage import AttemptCheckpoint
from hyperjoule.testing.executors import make_task


def test_running_attempt_reports_duration_and_energy_so_far(tmp_path: Path) -> None:
    meters = [FakeMeter({"gpu": 100.0}), EstimateMeter(10.0, unavailable={})]
    devices = NodeDevices(fixed=meters)
    seen: list[AttemptCheckpoint] = []
    task = make_task(tmp_path, sleep_s=2 * CHECKPOINT_PERIOD_S + 0.8)
    result = execute(task, devices, on_checkpoint=seen.append)
    devices.close()
    assert result.status.value == "succeeded"
    assert len(seen) >= 3
    first, second, last = seen[0], seen[1], seen[-1]
    # The first soon after the start (an attempt killed early is still known), then
    # one every period.
    assert first.attempt == 1 and first.duration_s == pytest.approx(FIRST_CHECKPOINT_S, abs=0.4)
    assert second.duration_s - first.duration_s == pytest.approx(CHECKPOINT_PERIOD_S, abs=0.5)
    assert last.duration_s > first.duration_s and last.duration_s < result.duration_s
    assert all(c.energy.partial for c in seen)
    for checkpoint in seen:
        # A device meter shared between attempts is apportioned only at the end: it
        # says so; the per-process estimate reads the CPU time so far.
        gpu = checkpoint.energy.get("gpu")
        assert gpu.method == "unavailable" and "apportioned only when" in (gpu.reason or "")
        cpu = checkpoint.energy.get("cpu_pkg")
        assert checkpoint.cpu_time_s is not None and cpu.method == "estimated"
        assert cpu.energy_j == pytest.approx(10.0 * checkpoint.cpu_time_s)
    assert not result.energy.partial
