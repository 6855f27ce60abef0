"""The Meter contract, run against every implementation (fakes stand in for hardware)."""

from __future__ import annotations

import pytest
from contract import MeterContract

from hyperjoule.meters import EstimateMeter, FakeMeter, Meter, UnavailableMeter
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
