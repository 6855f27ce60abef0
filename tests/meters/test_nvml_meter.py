"""NvmlMeter with a stand-in pynvml: counters, integration, timelines, attribution."""

from __future__ import annotations

import csv
import importlib.util
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_nvml import FakeGpu, FakeNvml, two_gpus
from hypothesis import given
from hypothesis import strategies as st

from hyperjoule.errors import MeterError
from hyperjoule.meters import (
    MeterConfig,
    NvmlMeter,
    RunUsage,
    create_meters,
    load_nvml,
    probe_meters,
)

USAGE = RunUsage(duration_s=3.0, cpu_time_s=1.0)
IDLE_PERIOD_S = 3600.0  # the sampler thread never ticks on its own; tests call sample()


class Clock:
    """A monotonic clock that returns the given times in order."""

    def __init__(self, *times_s: float) -> None:
        self._times: Iterator[float] = iter(times_s)

    def __call__(self) -> float:
        return next(self._times)


def gpu_csv(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "energy" / "gpu.csv").open() as f:
        return list(csv.DictReader(f))


def test_energy_counter_read_at_the_boundaries(tmp_path: Path) -> None:
    nvml = two_gpus()
    meter = NvmlMeter(None, IDLE_PERIOD_S, nvml, clock=Clock(10.0, 13.0))
    assert [g.device for g in meter.gpus] == ["gpu0 NVIDIA H200", "gpu1 NVIDIA H200"]
    meter.start(tmp_path)
    nvml.gpus[0].energy_mj = 1_000_000 + 750_000
    nvml.gpus[1].energy_mj = 1_000_000 + 120_500
    reading = meter.stop(USAGE)
    gpu = reading.components["gpu"]
    assert gpu.energy_j == pytest.approx(870.5)
    assert gpu.method == "counter"
    assert gpu.devices == ["gpu0 NVIDIA H200", "gpu1 NVIDIA H200"]
    assert gpu.attribution == "exclusive"
    assert gpu.reason is None
    assert gpu.sampling_period_s is None
    assert reading.files == ["energy/gpu.csv"]
    meter.close()
    assert nvml.references == 0


def test_power_block_from_samples(tmp_path: Path) -> None:
    nvml = two_gpus()
    meter = NvmlMeter(None, IDLE_PERIOD_S, nvml, clock=Clock(0.0, 0.5, 1.0))
    meter.start(tmp_path)
    nvml.gpus[0].power_mw, nvml.gpus[0].temp_c, nvml.gpus[0].util_gpu_pct = 300_000, 65, 100
    meter.sample()
    nvml.gpus[1].power_mw, nvml.gpus[1].temp_c, nvml.gpus[1].util_gpu_pct = 100_000, 45, 0
    power = meter.stop(USAGE).power
    meter.close()
    assert power is not None
    # Totals of both GPUs per sample: 500, 550, 400 W.
    assert power.gpu_avg_w == pytest.approx(1450.0 / 3)
    assert power.gpu_max_w == pytest.approx(550.0)
    assert power.gpu_min_w == pytest.approx(400.0)
    assert power.gpu_temp_avg_c == pytest.approx((55 + 55 + 65 + 55 + 65 + 45) / 6)
    assert power.gpu_temp_max_c == 65.0
    assert power.gpu_util_avg_pct == pytest.approx((90 + 90 + 100 + 90 + 100 + 0) / 6)
    assert power.gpu_util_max_pct == 100.0
    assert power.samples == 3
    assert power.sampling_period_s == pytest.approx(0.5)
    rows = gpu_csv(tmp_path)
    assert len(rows) == 6
    assert rows[0] == {
        "time_s": "0.0000",
        "gpu": "0",
        "power_w": "250.000",
        "temp_c": "55.000",
        "util_pct": "90.000",
        "mem_util_pct": "40.000",
        "mem_used_mib": "8192.000",
        "sm_clock_mhz": "1980.000",
    }
    assert [r["time_s"] for r in rows] == [
        "0.0000",
        "0.0000",
        "0.5000",
        "0.5000",
        "1.0000",
        "1.0000",
    ]


def test_gpu_without_counter_integrates_power(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(name="Tesla P100", energy_mj=None, power_mw=100_000)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(5.0, 6.0, 8.0))
    meter.start(tmp_path)
    nvml.gpus[0].power_mw = 300_000
    meter.sample()
    gpu = meter.stop(USAGE).components["gpu"]
    meter.close()
    # 5..6 s ramps 100 -> 300 W (200 J), 6..8 s at 300 W (600 J).
    assert gpu.energy_j == pytest.approx(800.0)
    assert gpu.method == "integrated"
    assert gpu.sampling_period_s == pytest.approx(1.5)
    assert gpu.reason is not None
    assert "no energy counter on gpu0 Tesla P100" in gpu.reason


def test_missing_power_readings_are_bridged_and_said(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(energy_mj=None, power_mw=200_000, temp_c=None)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0, 2.0, 3.0))
    meter.start(tmp_path)
    nvml.gpus[0].power_mw = None
    meter.sample()
    nvml.gpus[0].power_mw = 200_000
    meter.sample()
    reading = meter.stop(USAGE)
    meter.close()
    gpu = reading.components["gpu"]
    assert gpu.energy_j == pytest.approx(600.0)
    assert gpu.reason is not None
    assert "1 [N/A] readings bridged" in gpu.reason
    rows = gpu_csv(tmp_path)
    assert rows[1]["power_w"] == ""
    assert all(r["temp_c"] == "" for r in rows)
    assert reading.power is not None
    assert reading.power.gpu_temp_avg_c is None
    assert reading.power.samples == 4


def test_counter_failure_at_stop_falls_back_to_integration(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(power_mw=100_000)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(0.0, 4.0))
    meter.start(tmp_path)
    nvml.gpus[0].energy_mj = None
    gpu = meter.stop(USAGE).components["gpu"]
    assert gpu.method == "integrated"
    assert gpu.energy_j == pytest.approx(400.0)


def test_counter_going_backwards_is_not_negative_energy(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(power_mw=100_000)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0))
    meter.start(tmp_path)
    nvml.gpus[0].energy_mj = 5
    gpu = meter.stop(USAGE).components["gpu"]
    assert gpu.method == "integrated"
    assert gpu.energy_j == pytest.approx(100.0)


def test_lost_gpu_is_unavailable_with_reason(tmp_path: Path) -> None:
    nvml = two_gpus()
    meter = NvmlMeter(None, IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0))
    meter.start(tmp_path)
    nvml.gpus[1].lost = True
    reading = meter.stop(USAGE)
    gpu = reading.components["gpu"]
    # GPU 0 alone would be a silent under-count of the run's GPU energy.
    assert gpu.energy_j is None
    assert gpu.reason is not None
    assert "gpu1 NVIDIA H200" in gpu.reason
    assert "GPU is lost" in gpu.reason
    assert reading.power is not None
    meter.close()


def test_foreign_processes_make_it_combined(tmp_path: Path) -> None:
    nvml = two_gpus()
    nvml.gpus[0].pids = [os.getpid(), 4242]
    meter = NvmlMeter(None, IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0))
    meter.start(tmp_path)
    nvml.gpus[0].pids = [os.getpid()]
    nvml.gpus[1].pids = [777]
    gpu = meter.stop(USAGE).components["gpu"]
    assert gpu.attribution == "combined"
    assert (
        gpu.reason
        == "other processes used the GPU during the run (GPU 0: pid 4242; GPU 1: pid 777)"
    )
    # The next window starts afresh.
    nvml.gpus[1].pids = []
    meter._clock = Clock(2.0, 3.0)
    meter.start(tmp_path)
    assert meter.stop(USAGE).components["gpu"].attribution == "exclusive"


def test_only_own_process_stays_exclusive(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(pids=[os.getpid()])])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0))
    meter.start(tmp_path)
    assert meter.stop(USAGE).components["gpu"].attribution == "exclusive"


def test_measures_only_the_given_gpus(tmp_path: Path) -> None:
    nvml = two_gpus()
    meter = NvmlMeter([1], IDLE_PERIOD_S, nvml, clock=Clock(0.0, 1.0))
    meter.start(tmp_path)
    nvml.gpus[0].energy_mj = 9_000_000
    nvml.gpus[1].energy_mj = 1_010_000
    gpu = meter.stop(USAGE).components["gpu"]
    assert gpu.energy_j == pytest.approx(10.0)
    assert gpu.devices == ["gpu1 NVIDIA H200"]
    assert {r["gpu"] for r in gpu_csv(tmp_path)} == {"1"}


def test_unknown_gpu_index_names_the_device_and_the_fix() -> None:
    nvml = two_gpus()
    with pytest.raises(
        MeterError, match=r"GPU index 5 does not exist: NVML sees 2 GPU\(s\) \(0-1\)"
    ):
        NvmlMeter([0, 5], nvml=nvml)
    assert nvml.references == 0


def test_sampler_thread_samples_on_its_own(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(energy_mj=None)])
    meter = NvmlMeter([0], 0.005, nvml)
    meter.start(tmp_path)
    deadline = time.monotonic() + 10.0
    while nvml.calls.count("power") < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    reading = meter.stop(USAGE)
    meter.close()
    assert reading.power is not None
    assert reading.power.samples >= 5
    assert reading.power.gpu_avg_w == pytest.approx(250.0)
    assert reading.components["gpu"].method == "integrated"


@given(
    steps_s=st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=20),
    power_mw=st.integers(min_value=0, max_value=1_000_000),
)
def test_constant_power_integrates_to_power_times_window(
    steps_s: list[float], power_mw: int
) -> None:
    times_s = [1000.0]
    for step in steps_s:
        times_s.append(times_s[-1] + step)
    nvml = FakeNvml([FakeGpu(energy_mj=None, power_mw=power_mw)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(*times_s))
    with tempfile.TemporaryDirectory() as base:
        blocker = Path(base) / "file"
        blocker.write_text("")
        meter.start(blocker / "run")  # cannot write a timeline; energy is still measured
        for _ in times_s[1:-1]:
            meter.sample()
        reading = meter.stop(USAGE)
        meter.close()
    expected_j = power_mw / 1000 * (times_s[-1] - times_s[0])
    assert reading.components["gpu"].energy_j == pytest.approx(expected_j, rel=1e-9, abs=1e-6)
    assert reading.files == []


# Factory and probes -----------------------------------------------------------------


def gpu_meter_devices(environ: dict[str, str], tmp_path: Path) -> list[str] | str:
    config = MeterConfig(powercap_root=tmp_path / "none", sampling_period_s=IDLE_PERIOD_S)
    meters = create_meters(config, environ=environ, nvml=two_gpus())
    try:
        first = meters[0]
        if isinstance(first, NvmlMeter):
            return [g.device for g in first.gpus]
        for meter in meters:
            meter.start(tmp_path)
            reading = meter.stop(USAGE)
            if "gpu" in reading.components:
                return str(reading.components["gpu"].reason)
        raise AssertionError("no meter reported the GPU")
    finally:
        for meter in meters:
            meter.close()


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, ["gpu0 NVIDIA H200", "gpu1 NVIDIA H200"]),
        ("1", ["gpu1 NVIDIA H200"]),
        ("1,0", ["gpu1 NVIDIA H200", "gpu0 NVIDIA H200"]),
        ("GPU-bbbb", ["gpu1 NVIDIA H200"]),
        ("0,7,1", ["gpu0 NVIDIA H200"]),  # CUDA hides an invalid entry and all after it
    ],
)
def test_cuda_visible_devices_selects_the_measured_gpus(
    tmp_path: Path, visible: str | None, expected: list[str]
) -> None:
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert gpu_meter_devices(environ, tmp_path) == expected


@pytest.mark.parametrize("visible", ["", "-1"])
def test_no_visible_gpu_is_unavailable_with_reason(tmp_path: Path, visible: str) -> None:
    reason = gpu_meter_devices({"CUDA_VISIBLE_DEVICES": visible}, tmp_path)
    assert isinstance(reason, str)
    assert "the run is given no GPU" in reason


def test_mig_instance_is_explained(tmp_path: Path) -> None:
    reason = gpu_meter_devices({"CUDA_VISIBLE_DEVICES": "MIG-1234"}, tmp_path)
    assert isinstance(reason, str)
    assert "MIG instance" in reason


def test_explicit_gpus_win_over_environment(tmp_path: Path) -> None:
    config = MeterConfig(gpus=[0], powercap_root=tmp_path, sampling_period_s=IDLE_PERIOD_S)
    meters = create_meters(config, environ={"CUDA_VISIBLE_DEVICES": "1"}, nvml=two_gpus())
    assert isinstance(meters[0], NvmlMeter)
    assert [g.index for g in meters[0].gpus] == [0]
    for meter in meters:
        meter.close()


def test_bad_explicit_gpu_refuses_to_create_but_probe_reports(tmp_path: Path) -> None:
    config = MeterConfig(gpus=[3], powercap_root=tmp_path)
    with pytest.raises(MeterError, match="GPU index 3 does not exist"):
        create_meters(config, environ={}, nvml=two_gpus())
    nvml = next(r for r in probe_meters(config, environ={}, nvml=two_gpus()) if r.name == "nvml")
    assert not nvml.available
    assert "GPU index 3" in nvml.detail


def test_driver_not_loaded_is_a_probe_result_not_an_error(tmp_path: Path) -> None:
    config = MeterConfig(powercap_root=tmp_path)
    results = probe_meters(config, environ={}, nvml=FakeNvml([], init_error=9))
    nvml = next(r for r in results if r.name == "nvml")
    assert not nvml.available
    assert "Driver Not Loaded" in nvml.detail
    assert "NVIDIA driver" in nvml.detail


def test_probe_describes_counter_support(tmp_path: Path) -> None:
    fake = FakeNvml([FakeGpu(), FakeGpu(name="Tesla K80", energy_mj=None)])
    results = probe_meters(MeterConfig(powercap_root=tmp_path), environ={}, nvml=fake)
    nvml = next(r for r in results if r.name == "nvml")
    assert nvml.available
    assert nvml.detail == (
        "gpu0 NVIDIA H200 (energy counter), gpu1 Tesla K80 (no energy counter: integrated power)"
    )
    assert fake.references == 0


def test_machine_without_gpus(tmp_path: Path) -> None:
    results = probe_meters(MeterConfig(powercap_root=tmp_path), environ={}, nvml=FakeNvml([]))
    nvml = next(r for r in results if r.name == "nvml")
    assert not nvml.available
    assert "NVML sees no GPU" in nvml.detail


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="pynvml installed")
def test_missing_pynvml_gives_the_install_hint(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match="pip install nvidia-ml-py"):
        load_nvml()
    results = probe_meters(MeterConfig(powercap_root=tmp_path), environ={})
    nvml = next(r for r in results if r.name == "nvml")
    assert not nvml.available
    assert "pip install nvidia-ml-py" in nvml.detail


@pytest.mark.gpu
def test_real_gpu_window(tmp_path: Path) -> None:
    try:
        meter = NvmlMeter(None, 0.05)
    except MeterError as e:
        pytest.skip(f"no usable NVIDIA GPU: {e}")
    if not meter.gpus:
        meter.close()
        pytest.skip("NVML sees no GPU")
    meter.start(tmp_path)
    time.sleep(0.5)
    reading = meter.stop(RunUsage(duration_s=0.5, cpu_time_s=None))
    meter.close()
    gpu = reading.components["gpu"]
    assert gpu.method in ("counter", "integrated")
    assert gpu.energy_j is not None
    assert gpu.energy_j > 0
    assert reading.power is not None
    assert reading.power.samples >= 2
    assert len(gpu_csv(tmp_path)) >= 2 * len(meter.gpus)


def test_peek_reads_the_energy_counters_so_far(tmp_path: Path) -> None:
    nvml = two_gpus()
    meter = NvmlMeter(None, IDLE_PERIOD_S, nvml, clock=Clock(10.0, 13.0))
    meter.start(tmp_path)
    nvml.gpus[0].energy_mj = 1_000_000 + 250_000
    so_far = meter.peek(USAGE)
    assert so_far is not None
    assert so_far.components["gpu"].energy_j == pytest.approx(250.0)
    assert so_far.components["gpu"].method == "counter"
    nvml.gpus[0].energy_mj = 1_000_000 + 750_000
    assert meter.stop(USAGE).components["gpu"].energy_j == pytest.approx(750.0)
    meter.close()


def test_peek_without_counter_waits_for_the_window_to_close(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(name="Tesla P100", energy_mj=None, power_mw=100_000)])
    meter = NvmlMeter([0], IDLE_PERIOD_S, nvml, clock=Clock(5.0, 6.0, 8.0))
    meter.start(tmp_path)
    assert meter.peek(USAGE) is None
    meter.stop(USAGE)
    meter.close()
