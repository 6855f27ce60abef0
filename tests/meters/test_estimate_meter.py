"""EstimateMeter and UnavailableMeter: honest figures without sensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperjoule.meters import EstimateMeter, RunUsage, UnavailableMeter


def test_estimate_is_cpu_time_times_watts_and_says_how(tmp_path: Path) -> None:
    meter = EstimateMeter(10.0)
    assert meter.name == "estimate"
    meter.start(tmp_path)
    reading = meter.stop(RunUsage(duration_s=5.0, cpu_time_s=12.34))
    cpu = reading.components["cpu_pkg"]
    assert cpu.energy_j == pytest.approx(123.4)
    assert cpu.method == "estimated"
    assert cpu.attribution == "exclusive"
    assert cpu.reason == (
        "estimate: 12.3 s CPU time x 10 W per busy core; no RAPL counters on this machine"
    )
    assert reading.components["gpu"].reason == "no NVIDIA GPU / NVML not available"
    assert reading.components["cpu_dram"].reason == "no RAPL DRAM domain"
    assert reading.components["gpu"].energy_j is None
    assert reading.power is None
    meter.close()


def test_estimate_without_cpu_time_is_unavailable_not_zero(tmp_path: Path) -> None:
    meter = EstimateMeter(why="RAPL unreadable: fix it")
    meter.start(tmp_path)
    cpu = meter.stop(RunUsage(duration_s=5.0, cpu_time_s=None)).components["cpu_pkg"]
    assert cpu.energy_j is None
    assert cpu.method == "unavailable"
    assert cpu.reason is not None
    assert "no CPU time" in cpu.reason
    assert "RAPL unreadable: fix it" in cpu.reason


def test_estimate_covers_only_cpu_when_told(tmp_path: Path) -> None:
    meter = EstimateMeter(7.5, why="RAPL disabled", unavailable={})
    assert meter.components == ("cpu_pkg",)
    meter.start(tmp_path)
    cpu = meter.stop(RunUsage(duration_s=1.0, cpu_time_s=2.0)).components["cpu_pkg"]
    assert cpu.energy_j == pytest.approx(15.0)
    assert cpu.reason == "estimate: 2.0 s CPU time x 7.5 W per busy core; RAPL disabled"


@pytest.mark.parametrize("watts", [0.0, -3.0, float("nan")])
def test_estimate_rejects_nonpositive_power(watts: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        EstimateMeter(watts)


def test_estimate_rejects_unknown_components() -> None:
    with pytest.raises(ValueError, match="disk"):
        EstimateMeter(unavailable={"disk": "?"})
    with pytest.raises(ValueError, match="cpu_pkg"):
        EstimateMeter(unavailable={"cpu_pkg": "?"})


def test_unavailable_meter_reports_each_reason(tmp_path: Path) -> None:
    meter = UnavailableMeter({"cpu_dram": "no DRAM domain", "gpu": "no GPU"})
    assert meter.components == ("gpu", "cpu_dram")
    meter.start(tmp_path)
    reading = meter.stop(RunUsage(duration_s=1.0, cpu_time_s=1.0))
    assert {n: c.reason for n, c in reading.components.items()} == {
        "gpu": "no GPU",
        "cpu_dram": "no DRAM domain",
    }
    assert all(c.method == "unavailable" for c in reading.components.values())


def test_unavailable_meter_validates() -> None:
    with pytest.raises(ValueError, match="unknown"):
        UnavailableMeter({"disk": "x"})
    with pytest.raises(ValueError, match="reason"):
        UnavailableMeter({"gpu": ""})


def test_peek_estimates_the_cpu_time_so_far_and_keeps_the_window(tmp_path: Path) -> None:
    meter = EstimateMeter(10.0)
    meter.start(tmp_path)
    so_far = meter.peek(RunUsage(duration_s=2.0, cpu_time_s=1.5))
    assert so_far is not None
    assert so_far.components["cpu_pkg"].energy_j == pytest.approx(15.0)
    assert so_far.components["cpu_pkg"].method == "estimated"
    final = meter.stop(RunUsage(duration_s=4.0, cpu_time_s=3.0))
    assert final.components["cpu_pkg"].energy_j == pytest.approx(30.0)
    meter.close()
