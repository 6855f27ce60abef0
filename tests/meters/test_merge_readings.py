"""merge_readings: the most trustworthy figure per component, reasons kept, power block."""

from __future__ import annotations

import pytest

from hyperjoule.meters import MeterReading, merge_readings
from hyperjoule.records import EnergyComponent, PowerBlock


def comp(energy_j: float | None, method: str, reason: str | None = None) -> EnergyComponent:
    if energy_j is None:
        return EnergyComponent.unavailable(reason or "n/a")
    return EnergyComponent(energy_j=energy_j, method=method, reason=reason)  # type: ignore[arg-type]


def test_counter_beats_integrated_beats_estimated_regardless_of_order() -> None:
    readings = [
        MeterReading({"cpu_pkg": comp(10.0, "estimated")}),
        MeterReading({"cpu_pkg": comp(None, "unavailable", "permission denied")}),
        MeterReading({"cpu_pkg": comp(12.0, "counter")}),
        MeterReading({"cpu_pkg": comp(11.0, "integrated")}),
    ]
    energy, _ = merge_readings(readings)
    assert energy.get("cpu_pkg").energy_j == 12.0
    assert energy.get("cpu_pkg").method == "counter"
    energy, _ = merge_readings(readings[:2])
    assert energy.get("cpu_pkg").method == "estimated"


def test_first_reading_breaks_ties() -> None:
    energy, _ = merge_readings(
        [MeterReading({"gpu": comp(1.0, "counter")}), MeterReading({"gpu": comp(2.0, "counter")})]
    )
    assert energy.get("gpu").energy_j == 1.0


def test_all_unavailable_keeps_every_distinct_reason() -> None:
    energy, _ = merge_readings(
        [
            MeterReading({"cpu_dram": comp(None, "unavailable", "no RAPL DRAM domain")}),
            MeterReading({"cpu_dram": comp(None, "unavailable", "permission denied")}),
            MeterReading({"cpu_dram": comp(None, "unavailable", "no RAPL DRAM domain")}),
        ]
    )
    dram = energy.get("cpu_dram")
    assert dram.energy_j is None
    assert dram.method == "unavailable"
    assert dram.reason == "no RAPL DRAM domain; permission denied"


def test_components_in_record_order_and_total() -> None:
    energy, _ = merge_readings(
        [
            MeterReading({"cpu_dram": comp(3.0, "counter"), "cpu_pkg": comp(5.0, "counter")}),
            MeterReading({"gpu": comp(100.0, "integrated")}),
        ]
    )
    assert list(energy.components) == ["gpu", "cpu_pkg", "cpu_dram"]
    assert energy.total_j == pytest.approx(108.0)
    assert energy.total_method == "integrated"


def test_uncovered_component_is_absent_not_zero() -> None:
    energy, _ = merge_readings([MeterReading({"cpu_pkg": comp(5.0, "estimated")})])
    assert "gpu" not in energy.components
    assert energy.get("gpu").energy_j is None
    assert energy.to_dict()["gpu_j"] is None


def test_power_block_first_given_else_reason() -> None:
    power = PowerBlock(gpu_avg_w=200.0, samples=10)
    _, merged = merge_readings(
        [MeterReading({}), MeterReading({}, power=power), MeterReading({}, power=PowerBlock())]
    )
    assert merged is power
    _, merged = merge_readings([MeterReading({"cpu_pkg": comp(1.0, "counter")})])
    assert merged.reason == "no GPU meter"
    assert merged.gpu_avg_w is None


def test_no_readings() -> None:
    energy, power = merge_readings([])
    assert energy.components == {}
    assert energy.total_j is None
    assert power.reason == "no GPU meter"


@pytest.mark.parametrize(
    ("name", "component", "message"),
    [
        ("disk", EnergyComponent(energy_j=1.0, method="counter"), "unknown energy component"),
        ("gpu", EnergyComponent(energy_j=None, method="counter"), "exactly when"),
        ("gpu", EnergyComponent(energy_j=1.0, method="unavailable", reason="x"), "exactly when"),
        ("gpu", EnergyComponent(energy_j=None, method="unavailable"), "needs a reason"),
        ("gpu", EnergyComponent(energy_j=-1.0, method="counter"), "non-negative"),
        ("gpu", EnergyComponent(energy_j=float("nan"), method="counter"), "non-negative"),
        ("gpu", EnergyComponent(energy_j=1.0, method="guessed"), "unknown method"),  # type: ignore[arg-type]
    ],
)
def test_reading_rejects_broken_components(
    name: str, component: EnergyComponent, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MeterReading({name: component})
