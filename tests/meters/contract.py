"""The Meter contract as a reusable test class.

Subclass :class:`MeterContract` in a ``Test*`` class and provide a ``meter`` fixture that
returns a fresh meter (closed by the fixture's teardown or left to the tests, which
close it themselves); every test here then runs against that implementation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hyperjoule.meters import Meter, MeterReading, RunUsage, merge_readings
from hyperjoule.records import ATTRIBUTIONS, ENERGY_COMPONENTS, METHODS, EnergyComponent

USAGE = RunUsage(duration_s=1.5, cpu_time_s=2.0)


def check_reading(meter: Meter, reading: MeterReading, run_dir: Path) -> None:
    """Assert that ``reading`` keeps every rule of the record for ``meter``."""
    assert isinstance(reading, MeterReading)
    assert set(reading.components) == set(meter.components)
    for name, comp in reading.components.items():
        assert name in ENERGY_COMPONENTS
        assert isinstance(comp, EnergyComponent)
        assert comp.method in METHODS
        assert comp.attribution in ATTRIBUTIONS
        assert (comp.energy_j is None) == (comp.method == "unavailable"), name
        if comp.energy_j is None:
            assert comp.reason, f"{name} is unavailable without a reason"
        else:
            assert math.isfinite(comp.energy_j)
            assert comp.energy_j >= 0.0
        assert comp.wraps >= 0
        assert all(isinstance(d, str) for d in comp.devices)
    for relative in reading.files:
        assert not Path(relative).is_absolute()
        assert (run_dir / relative).is_file(), relative


class MeterContract:
    """Tests every Meter implementation must pass."""

    @pytest.fixture
    def meter(self) -> Meter:
        raise NotImplementedError("subclasses provide a `meter` fixture")

    @pytest.fixture
    def run_dir(self, tmp_path: Path) -> Path:
        directory = tmp_path / "run"
        directory.mkdir()
        return directory

    def test_name_and_components(self, meter: Meter) -> None:
        assert isinstance(meter.name, str)
        assert meter.name
        assert meter.components
        assert set(meter.components) <= set(ENERGY_COMPONENTS)
        meter.close()

    def test_window_returns_valid_reading(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        reading = meter.stop(USAGE)
        check_reading(meter, reading, run_dir)
        meter.close()

    def test_unknown_cpu_time_still_gives_a_reading(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        reading = meter.stop(RunUsage(duration_s=0.5, cpu_time_s=None))
        check_reading(meter, reading, run_dir)
        meter.close()

    def test_zero_length_window(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        check_reading(meter, meter.stop(RunUsage(duration_s=0.0, cpu_time_s=0.0)), run_dir)
        meter.close()

    def test_stop_without_start_raises(self, meter: Meter) -> None:
        with pytest.raises(RuntimeError, match="without start"):
            meter.stop(USAGE)
        meter.close()

    def test_start_twice_raises_and_window_survives(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        with pytest.raises(RuntimeError, match="twice"):
            meter.start(run_dir)
        check_reading(meter, meter.stop(USAGE), run_dir)
        meter.close()

    def test_stop_twice_raises(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        meter.stop(USAGE)
        with pytest.raises(RuntimeError):
            meter.stop(USAGE)
        meter.close()

    def test_repeated_windows(self, meter: Meter, tmp_path: Path) -> None:
        for i in range(3):
            directory = tmp_path / f"run-{i}"
            directory.mkdir()
            meter.start(directory)
            check_reading(meter, meter.stop(USAGE), directory)
        meter.close()

    def test_close_is_idempotent(self, meter: Meter) -> None:
        meter.close()
        meter.close()

    def test_close_with_open_window(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        meter.close()
        meter.close()
        with pytest.raises(RuntimeError):
            meter.stop(USAGE)

    def test_start_after_close_raises(self, meter: Meter, run_dir: Path) -> None:
        meter.close()
        with pytest.raises(RuntimeError, match="closed"):
            meter.start(run_dir)

    def test_reading_merges(self, meter: Meter, run_dir: Path) -> None:
        meter.start(run_dir)
        reading = meter.stop(USAGE)
        meter.close()
        energy, power = merge_readings([reading])
        assert set(energy.components) == set(meter.components)
        for name in meter.components:
            assert energy.get(name).energy_j == reading.components[name].energy_j
        assert power.to_dict()  # always a block, even without a GPU meter
        energy.to_dict()

    def test_peek_keeps_the_window_open(self, meter: Meter, run_dir: Path) -> None:
        assert meter.peek(USAGE) is None  # no window: nothing to read
        meter.start(run_dir)
        so_far = meter.peek(RunUsage(duration_s=0.5, cpu_time_s=0.5))
        if so_far is not None:  # None: this meter tells only when the window closes
            assert set(so_far.components) == set(meter.components)
            for comp in so_far.components.values():
                assert (comp.energy_j is None) == (comp.method == "unavailable")
        check_reading(meter, meter.stop(USAGE), run_dir)
        meter.close()
