"""Idle baseline: measuring it with the run's meters, net energy, storage, cooldown."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from fake_nvml import FakeGpu, FakeNvml, two_gpus
from fake_powercap import MAX_RANGE_UJ, FakePowercap
from hypothesis import given
from hypothesis import strategies as st

from hyperjoule.errors import MeterError, StorageError
from hyperjoule.meters import (
    Baseline,
    FakeMeter,
    MeterConfig,
    RunUsage,
    create_meters,
    gpu_temperature_reader,
    load_latest_baseline,
    measure_baseline,
    merge_readings,
    net_energy,
    net_energy_with_reason,
    save_baseline,
    wait_until_idle,
)
from hyperjoule.records import EnergyComponent, PowerBlock

NEVER_S = 3600.0  # sampler and poller threads never tick on their own in these tests


class IdleMachine(threading.Event):
    """A stop event whose wait is the idle window: it moves the fake counters, then ends."""

    def __init__(self, powercap: FakePowercap, gpu: FakeGpu) -> None:
        super().__init__()
        self.powercap = powercap
        self.gpu = gpu

    def wait(self, timeout: float | None = None) -> bool:
        self.powercap.advance("0", 3_000_000)  # 3 J, wrapping the counter
        self.powercap.advance("0:1", 1_000_000)  # 1 J of DRAM
        assert self.gpu.energy_mj is not None
        self.gpu.energy_mj += 120_000  # 120 J
        self.set()
        return True


def sample_baseline(**changes: object) -> Baseline:
    values: dict[str, object] = {
        "measured_at": "2030-01-02T03:04:05+00:00",
        "duration_s": 30.0,
        "power_w": {"gpu": 60.0, "cpu_pkg": 20.0, "cpu_dram": None},
        "methods": {"gpu": "counter", "cpu_pkg": "counter", "cpu_dram": "unavailable"},
        "devices": {"gpu": ["gpu0 NVIDIA H200"], "cpu_pkg": ["package-0"], "cpu_dram": []},
        "reasons": {"cpu_dram": "no RAPL DRAM domain"},
        "gpu_temp_c": 38.0,
    }
    values.update(changes)
    return Baseline(**values)  # type: ignore[arg-type]


def gpu_component(energy_j: float, devices: list[str] | None = None) -> EnergyComponent:
    return EnergyComponent(energy_j, "counter", devices or ["gpu0 NVIDIA H200"])


# measure_baseline ----------------------------------------------------------------------


def test_baseline_is_mean_power_per_component(tmp_path: Path) -> None:
    meter = FakeMeter(
        {"gpu": 60.0, "cpu_pkg": 20.0},
        method="counter",
        unavailable={"cpu_dram": "fake: no DRAM"},
        power=PowerBlock(gpu_temp_avg_c=41.0, samples=3),
    )
    baseline = measure_baseline([meter], 0.05, run_dir=tmp_path)
    assert baseline.power_w["gpu"] == pytest.approx(60.0)
    assert baseline.power_w["cpu_pkg"] == pytest.approx(20.0)
    assert baseline.power_w["cpu_dram"] is None
    assert baseline.reasons["cpu_dram"] == "fake: no DRAM"
    assert baseline.methods == {"gpu": "counter", "cpu_pkg": "counter", "cpu_dram": "unavailable"}
    assert baseline.devices["gpu"] == ["fake-gpu"]
    assert baseline.gpu_temp_c == 41.0
    assert baseline.duration_s >= 0.05
    assert datetime.fromisoformat(baseline.measured_at).tzinfo is not None
    # The window had no process: no CPU time, and the meters stay usable.
    assert meter.windows[0].cpu_time_s is None
    assert meter.run_dirs == [tmp_path]
    meter.start(tmp_path)
    meter.stop(RunUsage(1.0))


def test_baseline_with_the_machines_meters(tmp_path: Path) -> None:
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0, energy_uj=MAX_RANGE_UJ - 1_000_000)
    gpu = FakeGpu(energy_mj=5_000_000, temp_c=38)
    config = MeterConfig(
        powercap_root=powercap.root, sampling_period_s=NEVER_S, rapl_poll_s=NEVER_S
    )
    meters = create_meters(config, environ={}, nvml=FakeNvml([gpu]))
    try:
        baseline = measure_baseline(meters, 30.0, stop=IdleMachine(powercap, gpu))
        assert baseline.power_w["gpu"] is not None
        assert baseline.power_w["gpu"] * baseline.duration_s == pytest.approx(120.0)
        assert baseline.power_w["cpu_pkg"] * baseline.duration_s == pytest.approx(3.0)  # type: ignore[operator]
        assert baseline.power_w["cpu_dram"] * baseline.duration_s == pytest.approx(1.0)  # type: ignore[operator]
        assert baseline.methods == {"gpu": "counter", "cpu_pkg": "counter", "cpu_dram": "counter"}
        assert baseline.devices["gpu"] == ["gpu0 NVIDIA H200"]
        assert baseline.devices["cpu_pkg"] == ["package-0"]
        assert "whole CPU socket" in baseline.reasons["cpu_pkg"]
        assert baseline.gpu_temp_c == 38.0

        # A run measured by the same meters: its net energy subtracts the idle share.
        for meter in meters:
            meter.start(tmp_path / "run")
        assert gpu.energy_mj is not None
        gpu.energy_mj += 1_000_000  # 1000 J over a 10 s run
        energy, _ = merge_readings([m.stop(RunUsage(10.0)) for m in meters])
        idle_j = baseline.power_w["gpu"] * 10.0
        assert net_energy(energy.get("gpu"), 10.0, baseline) == pytest.approx(1000.0 - idle_j)
    finally:
        for meter in meters:
            meter.close()


def test_estimated_cpu_has_no_idle_baseline(tmp_path: Path) -> None:
    config = MeterConfig(powercap_root=tmp_path / "none")
    meters = create_meters(config, environ={}, nvml=FakeNvml([]))
    baseline = measure_baseline(meters, 0.01)
    assert baseline.power_w == {"gpu": None, "cpu_pkg": None, "cpu_dram": None}
    assert "own CPU time" in baseline.reasons["cpu_pkg"]
    assert baseline.reasons["gpu"]
    assert baseline.gpu_temp_c is None


def test_baseline_needs_a_positive_duration() -> None:
    with pytest.raises(ValueError, match="positive"):
        measure_baseline([FakeMeter({"gpu": 1.0})], 0.0)


# net_energy ------------------------------------------------------------------------------


def test_net_energy_is_gross_minus_idle() -> None:
    baseline = sample_baseline()
    assert net_energy(gpu_component(1000.0), 10.0, baseline) == pytest.approx(400.0)
    cpu = EnergyComponent(500.0, "counter", ["package-0"], "combined")
    assert net_energy(cpu, 10.0, baseline) == pytest.approx(300.0)
    assert net_energy(cpu, 10.0, baseline, name="cpu_pkg") == pytest.approx(300.0)


def test_net_energy_below_idle_is_negative_not_clamped() -> None:
    value, reason = net_energy_with_reason(gpu_component(100.0), 10.0, sample_baseline())
    assert value == pytest.approx(-500.0)
    assert reason is None


def test_net_energy_none_with_reasons() -> None:
    baseline = sample_baseline()
    cases = {
        "no gross energy": EnergyComponent.unavailable("GPU lost"),
        "own CPU time": EnergyComponent(50.0, "estimated", ["cpu"]),
        "same devices": gpu_component(100.0, ["gpu1 NVIDIA H200"]),
        "no idle power for cpu_dram": EnergyComponent(10.0, "counter", []),
    }
    for expected, component in cases.items():
        name = "cpu_dram" if expected.startswith("no idle") else None
        value, reason = net_energy_with_reason(component, 10.0, baseline, name=name)
        assert value is None
        assert reason is not None and expected in reason, (expected, reason)
    value, reason = net_energy_with_reason(gpu_component(100.0), 10.0, baseline, name="cpu_pkg")
    assert value is None and reason is not None and "measure a new baseline" in reason


@given(
    gross_j=st.floats(0.0, 1e7),
    idle_w=st.floats(0.0, 1e4),
    duration_s=st.floats(0.0, 1e5),
)
def test_net_plus_idle_share_is_gross(gross_j: float, idle_w: float, duration_s: float) -> None:
    baseline = sample_baseline(power_w={"gpu": idle_w})
    net_j = net_energy(gpu_component(gross_j), duration_s, baseline)
    assert net_j is not None
    assert net_j + idle_w * duration_s == pytest.approx(gross_j, rel=1e-9, abs=1e-6)


# save / load --------------------------------------------------------------------------


def test_save_and_load_latest(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert load_latest_baseline(results) is None
    first = sample_baseline(hostname=None)
    path = save_baseline(results, first)
    assert path == results / "baselines" / "20300102T030405Z.json"
    assert json.loads(path.read_text())["power_w"]["gpu"] == 60.0
    assert load_latest_baseline(results) == first
    # A second baseline in the same second keeps the first file and becomes the latest.
    second = sample_baseline(power_w={"gpu": 55.0, "cpu_pkg": None, "cpu_dram": None})
    second_path = save_baseline(results, second)
    assert second_path != path and path.exists()
    assert load_latest_baseline(results) == second
    assert sorted(p.name for p in (results / "baselines").iterdir()) == [
        "20300102T030405Z-2.json",
        "20300102T030405Z.json",
        "latest.json",
    ]


def test_baseline_of_another_host_is_ignored(tmp_path: Path) -> None:
    other = sample_baseline(hostname="some-other-machine.invalid")
    save_baseline(tmp_path, other)
    assert load_latest_baseline(tmp_path) is None
    assert load_latest_baseline(tmp_path, any_host=True) == other


def test_corrupt_latest_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "latest.json").write_text("{not json")
    with pytest.raises(StorageError, match="hyperjoule baseline"):
        load_latest_baseline(tmp_path)


def test_from_dict_ignores_unknown_keys() -> None:
    data = sample_baseline().to_dict()
    data["added_later"] = 1
    assert Baseline.from_dict(data) == sample_baseline()


# wait_until_idle ---------------------------------------------------------------------------


class Temperatures:
    def __init__(self, *temps_c: float | None) -> None:
        self.temps_c = list(temps_c)
        self.reads = 0

    def __call__(self) -> float | None:
        self.reads += 1
        return self.temps_c.pop(0) if len(self.temps_c) > 1 else self.temps_c[0]


def test_waits_until_within_the_target() -> None:
    temps = Temperatures(55.0, 48.0, 42.5, 40.0)
    reached, waited_s = wait_until_idle(temps, 40.0, 3.0, 60.0, threading.Event(), poll_s=0.001)
    assert reached
    assert temps.reads == 3  # 42.5 is within 3 °C of 40
    assert waited_s >= 0.0


def test_cooler_than_the_target_is_idle() -> None:
    reached, _ = wait_until_idle(lambda: 30.0, 40.0, 0.0, 60.0, threading.Event())
    assert reached


def test_gives_up_after_max_s() -> None:
    reached, waited_s = wait_until_idle(lambda: 80.0, 40.0, 3.0, 0.05, threading.Event(), 0.01)
    assert not reached
    assert waited_s >= 0.05


def test_no_reading_never_counts_as_idle() -> None:
    reached, waited_s = wait_until_idle(lambda: None, 40.0, 3.0, 0.02, threading.Event(), 0.01)
    assert not reached
    assert waited_s >= 0.02


def test_stop_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    reached, _ = wait_until_idle(lambda: 80.0, 40.0, 3.0, 3600.0, stop)
    assert not reached


# gpu_temperature_reader ---------------------------------------------------------------


def test_reader_gives_the_hottest_gpu() -> None:
    nvml = two_gpus()
    nvml.gpus[0].temp_c = 50
    nvml.gpus[1].temp_c = 61
    reader = gpu_temperature_reader(nvml, environ={})
    assert reader is not None
    with reader:
        assert reader() == 61.0
        nvml.gpus[1].temp_c = None  # [N/A]
        assert reader() == 50.0
        nvml.gpus[0].lost = True
        assert reader() is None
    assert nvml.references == 0


def test_reader_follows_the_given_gpus() -> None:
    nvml = two_gpus()
    nvml.gpus[0].temp_c = 70
    nvml.gpus[1].temp_c = 45
    for reader in (
        gpu_temperature_reader(nvml, [1], environ={}),
        gpu_temperature_reader(nvml, environ={"CUDA_VISIBLE_DEVICES": "1"}),
    ):
        assert reader is not None
        assert reader() == 45.0
        reader.close()
        reader.close()
    assert nvml.references == 0


def test_reader_without_nvml_or_gpus_is_none() -> None:
    assert gpu_temperature_reader(FakeNvml([], init_error=9)) is None
    nvml = FakeNvml([])
    assert gpu_temperature_reader(nvml, environ={}) is None
    assert nvml.references == 0


def test_reader_rejects_an_unknown_gpu() -> None:
    nvml = two_gpus()
    with pytest.raises(MeterError, match="GPU index 5 does not exist"):
        gpu_temperature_reader(nvml, [5])
    assert nvml.references == 0
