"""Trapezoid integration (property tests) and the periodic sampler thread."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperjoule.meters import trapezoid_energy_j
from hyperjoule.meters._sampler import PeriodicSampler

increments = st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=50)


def times_from(steps_s: list[float]) -> list[float]:
    times_s = [0.0]
    for step in steps_s:
        times_s.append(times_s[-1] + step)
    return times_s


@given(steps_s=increments, power_w=st.floats(min_value=0.0, max_value=2000.0))
def test_constant_power_gives_power_times_duration(steps_s: list[float], power_w: float) -> None:
    times_s = times_from(steps_s)
    energy_j = trapezoid_energy_j(times_s, [power_w] * len(times_s))
    assert energy_j == pytest.approx(power_w * times_s[-1], rel=1e-9, abs=1e-9)


@given(
    steps_s=increments,
    start_w=st.floats(min_value=0.0, max_value=1000.0),
    slope_w_per_s=st.floats(min_value=0.0, max_value=50.0),
)
def test_linear_power_is_exact(steps_s: list[float], start_w: float, slope_w_per_s: float) -> None:
    times_s = times_from(steps_s)
    powers_w = [start_w + slope_w_per_s * t for t in times_s]
    duration_s = times_s[-1]
    expected_j = start_w * duration_s + 0.5 * slope_w_per_s * duration_s**2
    assert trapezoid_energy_j(times_s, powers_w) == pytest.approx(expected_j, rel=1e-9, abs=1e-6)


@given(
    steps_s=increments,
    powers=st.lists(st.floats(min_value=0.0, max_value=1000.0), min_size=51, max_size=51),
)
def test_energy_is_additive_and_bounded(steps_s: list[float], powers: list[float]) -> None:
    times_s = times_from(steps_s)
    powers_w = powers[: len(times_s)]
    total_j = trapezoid_energy_j(times_s, powers_w)
    mid = len(times_s) // 2
    split_j = trapezoid_energy_j(times_s[: mid + 1], powers_w[: mid + 1]) + trapezoid_energy_j(
        times_s[mid:], powers_w[mid:]
    )
    assert total_j == pytest.approx(split_j, rel=1e-9, abs=1e-6)
    assert min(powers_w) * times_s[-1] - 1e-6 <= total_j <= max(powers_w) * times_s[-1] + 1e-6


def test_degenerate_inputs() -> None:
    assert trapezoid_energy_j([], []) == 0.0
    assert trapezoid_energy_j([1.0], [100.0]) == 0.0
    with pytest.raises(ValueError, match="backwards"):
        trapezoid_energy_j([1.0, 0.5], [1.0, 1.0])
    with pytest.raises(ValueError, match="2 times but 1"):
        trapezoid_energy_j([0.0, 1.0], [1.0])


def test_sampler_ticks_until_stopped_and_survives_failures() -> None:
    ticks: list[float] = []
    enough = threading.Event()

    def sample(now_s: float) -> None:
        ticks.append(now_s)
        if len(ticks) == 2:
            raise OSError("one bad read")
        if len(ticks) >= 5:
            enough.set()

    sampler = PeriodicSampler(0.001, sample, name="test-sampler")
    sampler.start()
    assert enough.wait(10.0)
    sampler.stop()
    sampler.stop()
    count = len(ticks)
    assert ticks == sorted(ticks)
    assert sampler.failures == 1
    assert len(ticks) == count  # nothing ticks after stop() returned


def test_sampler_rejects_bad_period() -> None:
    with pytest.raises(ValueError, match="positive"):
        PeriodicSampler(0.0, lambda now_s: None, name="x")
