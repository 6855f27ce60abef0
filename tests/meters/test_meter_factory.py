"""create_meters / probe_meters: what a machine supports, never an exception for a gap."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_nvml import FakeNvml

from hyperjoule.meters import (
    EstimateMeter,
    MeterConfig,
    RunUsage,
    UnavailableMeter,
    create_meters,
    merge_readings,
    probe_meters,
)


def measure(config: MeterConfig, run_dir: Path) -> dict[str, object]:
    # A stand-in NVML without GPUs keeps these tests the same on a GPU machine.
    meters = create_meters(config, environ={}, nvml=FakeNvml([]))
    for meter in meters:
        meter.start(run_dir)
    energy, power = merge_readings([m.stop(RunUsage(2.0, 3.0)) for m in meters])
    for meter in meters:
        meter.close()
    return {"energy": energy.to_dict(), "power": power.to_dict(), "meters": meters}


def test_machine_without_sensors_estimates_cpu_and_explains_the_rest(tmp_path: Path) -> None:
    config = MeterConfig(powercap_root=tmp_path / "no-powercap")
    result = measure(config, tmp_path)
    energy = result["energy"]
    assert isinstance(energy, dict)
    assert energy["cpu_pkg_j"] == pytest.approx(30.0)
    assert energy["components"]["cpu_pkg"]["method"] == "estimated"
    assert "no RAPL" in energy["components"]["cpu_pkg"]["reason"]
    assert energy["gpu_j"] is None
    assert energy["components"]["gpu"]["reason"]
    assert energy["cpu_dram_j"] is None
    assert "DRAM" in energy["components"]["cpu_dram"]["reason"]
    assert result["power"]["reason"] == "no GPU meter"  # type: ignore[index]
    kinds = [type(m) for m in result["meters"]]  # type: ignore[attr-defined]
    assert EstimateMeter in kinds
    assert UnavailableMeter in kinds


def test_everything_disabled_leaves_only_reasons(tmp_path: Path) -> None:
    config = MeterConfig(use_rapl=False, use_gpu=False, estimate_cpu=False)
    energy = measure(config, tmp_path)["energy"]
    assert isinstance(energy, dict)
    assert energy["total_j"] is None
    reasons = {n: c["reason"] for n, c in energy["components"].items()}
    assert "use_gpu=False" in reasons["gpu"]
    assert "use_rapl=False" in reasons["cpu_pkg"]
    assert "estimate_cpu=False" in reasons["cpu_pkg"]
    assert "use_rapl=False" in reasons["cpu_dram"]


def test_probe_report(tmp_path: Path) -> None:
    config = MeterConfig(powercap_root=tmp_path / "none")
    results = probe_meters(config, environ={}, nvml=FakeNvml([]))
    by_name = {r.name: r for r in results}
    assert by_name["estimate"].available
    assert "10 W" in by_name["estimate"].detail
    assert not by_name["rapl"].available
    assert not by_name["nvml"].available
    assert all(r.detail for r in results)


def test_default_config() -> None:
    config = MeterConfig()
    assert config.powercap_root == Path("/sys/class/powercap")
    assert config.sampling_period_s == 0.1
    assert config.gpus is None
