"""Idle baselines give net energy; idle cooldowns wait and say what they did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project
from hyperjoule.config import load_study
from hyperjoule.execution import run_study
from hyperjoule.meters import FakeMeter


def _study(project: Project, **top: object) -> Path:
    return project.write_study(
        [{"target": "toy", "model": "small", "mode": "default", "runs": 2}], **top
    )


def test_baseline_gives_net_energy(project: Project) -> None:
    meter = FakeMeter({"gpu": 100.0, "cpu_pkg": 20.0})
    loaded = load_study(_study(project, baseline_s=0.3))
    result = run_study(loaded, project.results, meters=[meter])
    saved = json.loads((project.results / "baselines" / "latest.json").read_text())
    assert saved["power_w"]["gpu"] == pytest.approx(100.0, rel=0.05)
    for record in result.records:
        gpu = record.energy.get("gpu")
        assert gpu.idle_power_w == pytest.approx(100.0, rel=0.05)
        assert gpu.energy_j is not None and gpu.net_energy_j is not None
        assert record.duration_s is not None
        # Constant power equal to idle: net is gross minus idle x duration, close to 0.
        expected = gpu.energy_j - gpu.idle_power_w * record.duration_s
        assert gpu.net_energy_j == pytest.approx(expected)
        assert record.provenance["baseline"]["power_w"]["gpu"] == saved["power_w"]["gpu"]
        assert record.energy.to_dict()["net_total_j"] is not None


def test_without_baseline_net_energy_is_absent_not_zero(project: Project) -> None:
    result = run_study(
        load_study(_study(project)), project.results, meters=[FakeMeter({"gpu": 50.0})]
    )
    gpu = result.records[0].energy.get("gpu")
    assert gpu.net_energy_j is None and gpu.idle_power_w is None
    assert result.records[0].energy.to_dict()["net_total_j"] is None


def test_idle_cooldown_without_gpu_sensor_waits_the_maximum(project: Project) -> None:
    loaded = load_study(
        _study(project, defaults={"cooldown": {"max_s": 0.4, "until_gpu_temp_within_c": 3}})
    )
    result = run_study(loaded, project.results, meters=[FakeMeter({"gpu": 50.0})])
    first, second = result.records
    assert first.provenance["cooldown_before"] is None
    cooldown = second.provenance["cooldown_before"]
    assert cooldown["kind"] == "until_idle" and cooldown["reached"] is False
    assert cooldown["waited_s"] == pytest.approx(0.4)
    assert cooldown["reason"]
