"""The Meter contract, run against every implementation (fakes stand in for hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract import MeterContract
from fake_nvml import FakeGpu, FakeNvml, two_gpus
from fake_powercap import FakePowercap

from hyperjoule.meters import (
    EstimateMeter,
    FakeMeter,
    Meter,
    NvmlMeter,
    RaplMeter,
    UnavailableMeter,
)
from hyperjoule.records import PowerBlock


class TestEstimateMeter(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return EstimateMeter()


class TestEstimateMeterCpuOnly(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return EstimateMeter(25.0, unavailable={})


class TestUnavailableMeter(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return UnavailableMeter({"gpu": "no GPU", "cpu_dram": "no DRAM domain"})


class TestFakeMeterConstant(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return FakeMeter(
            {"gpu": 250.0, "cpu_pkg": 40.0},
            method="counter",
            unavailable={"cpu_dram": "fake: no DRAM"},
            power=PowerBlock(gpu_avg_w=250.0, samples=3),
            timeline=True,
        )


class TestFakeMeterTrace(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return FakeMeter({"gpu": [(0.0, 100.0), (1.0, 300.0), (2.0, 50.0)]}, name="replay")


class TestRaplMeter(MeterContract):
    @pytest.fixture
    def meter(self, tmp_path: Path) -> Meter:
        tree = FakePowercap(tmp_path / "sys")
        tree.add_package(0, energy_uj=123_456)
        tree.add_package(1, dram_uj=None)
        return RaplMeter(tree.root, poll_s=0.01)


class TestRaplMeterBrokenCounter(MeterContract):
    @pytest.fixture
    def meter(self, tmp_path: Path) -> Meter:
        tree = FakePowercap(tmp_path / "sys")
        tree.add_package(0)
        (tree.zones["0"] / "energy_uj").write_text("not a number\n")
        return RaplMeter(tree.root, poll_s=0.01)


class TestRaplMeterWithoutPowercap(MeterContract):
    @pytest.fixture
    def meter(self, tmp_path: Path) -> Meter:
        return RaplMeter(tmp_path / "absent")


class TestNvmlMeterCounter(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return NvmlMeter(None, 0.01, two_gpus())


class TestNvmlMeterIntegrated(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        nvml = FakeNvml([FakeGpu(energy_mj=None, temp_c=None, util_gpu_pct=None, pids=[1])])
        return NvmlMeter([0], 0.01, nvml)


class TestNvmlMeterLostGpu(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        nvml = two_gpus()
        meter = NvmlMeter(None, 0.01, nvml)
        nvml.gpus[0].lost = True
        return meter


class TestNvmlMeterWithoutGpus(MeterContract):
    @pytest.fixture
    def meter(self) -> Meter:
        return NvmlMeter([], 0.01, two_gpus())
