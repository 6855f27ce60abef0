"""FakeMeter: deterministic replay for tests of the runner and reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperjoule.meters import FakeMeter, RunUsage


def window(meter: FakeMeter, run_dir: Path, duration_s: float) -> dict[str, float | None]:
    meter.start(run_dir)
    reading = meter.stop(RunUsage(duration_s=duration_s, cpu_time_s=None))
    return {n: c.energy_j for n, c in reading.components.items()}


def test_constant_power_times_duration(tmp_path: Path) -> None:
    meter = FakeMeter({"gpu": 200.0, "cpu_pkg": 50.0}, method="counter")
    assert window(meter, tmp_path, 3.0) == {"gpu": 600.0, "cpu_pkg": 150.0}
    assert window(meter, tmp_path, 1.0) == {"gpu": 200.0, "cpu_pkg": 50.0}
    assert [u.duration_s for u in meter.windows] == [3.0, 1.0]
    assert meter.run_dirs == [tmp_path, tmp_path]


def test_trace_is_integrated_piecewise_linear(tmp_path: Path) -> None:
    meter = FakeMeter({"gpu": [(0.0, 100.0), (2.0, 300.0)]})
    # 0..2 s ramps 100 -> 300 W (400 J), then held at 300 W for 1 s.
    assert window(meter, tmp_path, 3.0)["gpu"] == pytest.approx(700.0)
    # Half the ramp: 100 -> 200 W over 1 s.
    assert window(meter, tmp_path, 1.0)["gpu"] == pytest.approx(150.0)


@given(
    power_w=st.floats(min_value=0.0, max_value=1e4),
    duration_s=st.floats(min_value=0.0, max_value=1e5),
)
def test_flat_trace_equals_constant(power_w: float, duration_s: float) -> None:
    traced = FakeMeter({"gpu": [(0.0, power_w), (duration_s / 3, power_w), (1e6, power_w)]})
    constant = FakeMeter({"gpu": power_w})
    for meter in (traced, constant):
        meter.start(Path("."))
    e_traced = traced.stop(RunUsage(duration_s)).components["gpu"].energy_j
    e_constant = constant.stop(RunUsage(duration_s)).components["gpu"].energy_j
    assert e_traced == pytest.approx(e_constant, rel=1e-9, abs=1e-6)


def test_unavailable_components_and_timeline(tmp_path: Path) -> None:
    meter = FakeMeter({"gpu": 10.0}, unavailable={"cpu_pkg": "fake: no CPU"}, timeline=True)
    meter.start(tmp_path)
    reading = meter.stop(RunUsage(duration_s=2.0))
    assert reading.components["cpu_pkg"].reason == "fake: no CPU"
    assert reading.files == ["energy/fake.csv"]
    assert (tmp_path / "energy" / "fake.csv").read_text().splitlines()[0] == (
        "time_s,component,power_w"
    )


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="method"):
        FakeMeter({"gpu": 1.0}, method="unavailable")
    with pytest.raises(ValueError, match="components"):
        FakeMeter({"disk": 1.0})
    with pytest.raises(ValueError, match="components"):
        FakeMeter({"gpu": 1.0}, unavailable={"gpu": "both"})
