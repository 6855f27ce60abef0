"""The Meter base class turns sensor failures into unavailable components, never errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hyperjoule.meters import Meter, MeterReading, RunUsage
from hyperjoule.records import EnergyComponent


class BrokenMeter(Meter):
    """Fails where told to, like a sensor that vanishes mid-study."""

    name = "broken"
    components = ("gpu", "cpu_pkg")

    def __init__(self, fail_at: str) -> None:
        self.fail_at = fail_at
        self.aborted = 0
        self.released = 0

    def _open_window(self, run_dir: Path) -> None:
        if self.fail_at == "start":
            raise OSError("device vanished")

    def _close_window(self, usage: RunUsage) -> MeterReading:
        if self.fail_at == "stop":
            raise OSError("read failed")
        if self.fail_at == "invalid":
            return MeterReading({"gpu": EnergyComponent(energy_j=-5.0, method="counter")})
        if self.fail_at == "extra":
            return MeterReading({"cpu_dram": EnergyComponent(energy_j=1.0, method="counter")})
        return MeterReading(
            {c: EnergyComponent(energy_j=1.0, method="counter") for c in self.components}
        )

    def _abort_window(self) -> None:
        self.aborted += 1

    def _release(self) -> None:
        self.released += 1


@pytest.mark.parametrize(
    ("fail_at", "reason"),
    [
        ("start", "broken meter failed at start: device vanished"),
        ("stop", "broken meter failed: read failed"),
        ("invalid", "broken meter failed: gpu: energy_j must be a non-negative number"),
    ],
)
def test_sensor_failure_gives_unavailable_components(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fail_at: str, reason: str
) -> None:
    meter = BrokenMeter(fail_at)
    with caplog.at_level(logging.WARNING, logger="hyperjoule.meters"):
        meter.start(tmp_path)
        reading = meter.stop(RunUsage(1.0, 1.0))
    assert set(reading.components) == {"gpu", "cpu_pkg"}
    for comp in reading.components.values():
        assert comp.energy_j is None
        assert comp.reason is not None
        assert comp.reason.startswith(reason)
    assert meter.aborted == 1
    assert "broken" in caplog.text
    # The meter is usable again after a failed window.
    meter.fail_at = "none"
    meter.start(tmp_path)
    assert meter.stop(RunUsage(1.0, 1.0)).components["gpu"].energy_j == 1.0


def test_reporting_uncovered_components_is_a_bug(tmp_path: Path) -> None:
    meter = BrokenMeter("extra")
    meter.start(tmp_path)
    with pytest.raises(RuntimeError, match="does not cover"):
        meter.stop(RunUsage(1.0, 1.0))


def test_close_aborts_open_window_and_releases_once(tmp_path: Path) -> None:
    meter = BrokenMeter("none")
    meter.start(tmp_path)
    meter.close()
    meter.close()
    assert (meter.aborted, meter.released) == (1, 1)
    assert "BrokenMeter" in repr(meter)
