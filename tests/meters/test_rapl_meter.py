"""RaplMeter on fake powercap trees in the kernel's format: counters, wraps, permissions."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from fake_powercap import MAX_RANGE_UJ, FakePowercap
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperjoule.meters import MeterConfig, RaplMeter, RunUsage, _rapl, create_meters, probe_meters
from hyperjoule.meters._rapl import counter_delta_uj, discover_rapl_zones, probe_rapl

USAGE = RunUsage(duration_s=10.0, cpu_time_s=5.0)
IDLE_POLL_S = 3600.0  # the poller never ticks on its own; tests call poll()


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    tree = FakePowercap(tmp_path / "sys")
    tree.add_package(0, energy_uj=1_000_000, dram_uj=500_000)
    tree.add_package(1, energy_uj=2_000_000, dram_uj=700_000)
    return tree


def test_discovers_packages_and_dram_not_core_or_psys(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path / "sys")
    tree.add_package(0)
    tree.add_zone("1", "psys")
    tree.add_zone("0", "package-0", prefix="intel-rapl-mmio")
    zones = discover_rapl_zones(tree.root)
    assert [(z.domain, z.device) for z in zones] == [
        ("package", "package-0"),
        ("dram", "package-0:dram"),
    ]
    assert zones[0].max_energy_range_uj == MAX_RANGE_UJ


def test_discovers_plain_directories_and_many_packages(tmp_path: Path) -> None:
    for index in (0, 2, 10):
        (tmp_path / f"intel-rapl:{index}").mkdir()
        (tmp_path / f"intel-rapl:{index}" / "name").write_text(f"package-{index}\n")
        (tmp_path / f"intel-rapl:{index}" / "max_energy_range_uj").write_text("1000\n")
    assert [z.device for z in discover_rapl_zones(tmp_path)] == [
        "package-0",
        "package-2",
        "package-10",
    ]


def test_no_tree_means_no_zones(tmp_path: Path) -> None:
    assert discover_rapl_zones(tmp_path / "absent") == []
    probe = probe_rapl(tmp_path / "absent")
    assert not probe.available
    assert "no RAPL counters on this machine" in probe.detail


def test_counts_energy_between_start_and_stop(powercap: FakePowercap, tmp_path: Path) -> None:
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    powercap.advance("0", 30_000_000)
    powercap.advance("1", 20_000_000)
    powercap.advance("0:1", 4_000_000)
    powercap.advance("1:1", 1_000_000)
    powercap.advance("0:0", 99_000_000)  # core is part of the package figure
    reading = meter.stop(USAGE)
    meter.close()
    pkg, dram = reading.components["cpu_pkg"], reading.components["cpu_dram"]
    assert pkg.energy_j == pytest.approx(50.0)
    assert pkg.method == "counter"
    assert pkg.devices == ["package-0", "package-1"]
    assert pkg.attribution == "combined"
    assert pkg.reason is not None
    assert "whole CPU socket" in pkg.reason
    assert pkg.wraps == 0
    assert dram.energy_j == pytest.approx(5.0)
    assert dram.devices == ["package-0:dram", "package-1:dram"]
    assert reading.files == ["energy/cpu.csv"]
    rows = (tmp_path / "energy" / "cpu.csv").read_text().splitlines()
    assert rows[0] == "time_s,device,energy_j"
    assert rows[-4].endswith(",package-0,30.000000")


def test_wrap_during_a_run(powercap: FakePowercap, tmp_path: Path) -> None:
    powercap.set("0", MAX_RANGE_UJ - 1_000_000)
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    powercap.advance("0", 3_000_000)
    assert powercap.read("0") == 2_000_000
    pkg = meter.stop(USAGE).components["cpu_pkg"]
    assert pkg.energy_j == pytest.approx(3.0)
    assert pkg.wraps == 1


def test_several_wraps_in_a_long_run_are_caught_by_polling(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    step_uj = MAX_RANGE_UJ * 3 // 4
    for _ in range(4):
        powercap.advance("0", step_uj)
        meter.poll()
    pkg = meter.stop(USAGE).components["cpu_pkg"]
    assert pkg.energy_j == pytest.approx(4 * step_uj / 1e6)
    assert pkg.wraps == 3


def test_poller_thread_reads_counters(powercap: FakePowercap, tmp_path: Path) -> None:
    meter = RaplMeter(powercap.root, poll_s=0.01)
    meter.start(tmp_path)
    timeline = tmp_path / "energy" / "cpu.csv"
    deadline = time.monotonic() + 10.0
    # Bounded wait for the poller's rows (4 zones per poll, plus the start rows).
    while time.monotonic() < deadline:
        if len(timeline.read_text().splitlines()) > 1 + 4 * 3:
            break
        time.sleep(0.01)
    reading = meter.stop(USAGE)
    meter.close()
    assert len(timeline.read_text().splitlines()) > 1 + 4 * 3
    assert reading.components["cpu_pkg"].energy_j == 0.0


def test_no_dram_domain_is_unavailable_with_reason(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path / "sys")
    tree.add_package(0, dram_uj=None)
    meter = RaplMeter(tree.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    reading = meter.stop(USAGE)
    assert reading.components["cpu_pkg"].energy_j == 0.0
    dram = reading.components["cpu_dram"]
    assert dram.energy_j is None
    assert dram.reason is not None
    assert "no RAPL DRAM domain" in dram.reason


def test_no_zones_reads_unavailable(tmp_path: Path) -> None:
    meter = RaplMeter(tmp_path / "absent", poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    reading = meter.stop(USAGE)
    assert all(c.energy_j is None and c.reason for c in reading.components.values())
    assert reading.files == []


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make one energy_uj unreadable the way a non-root user sees it (even as root)."""
    real = _rapl._read_sysfs

    def read(path: Path) -> str:
        if path == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(_rapl, "_read_sysfs", read)


def test_unreadable_counter_gives_the_fix(
    powercap: FakePowercap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deny(monkeypatch, powercap.root / "intel-rapl:1" / "energy_uj")
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    reading = meter.stop(USAGE)
    pkg = reading.components["cpu_pkg"]
    # One unreadable package: no partial sum passed off as the CPU's energy.
    assert pkg.energy_j is None
    assert pkg.reason is not None
    assert f"sudo chmod o+r {powercap.root}/intel-rapl:*/energy_uj" in pkg.reason
    assert "intel-rapl:1/energy_uj" in pkg.reason
    assert reading.components["cpu_dram"].energy_j == 0.0


def test_real_permission_denied(powercap: FakePowercap, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files regardless of their mode")
    (powercap.zones["0"] / "energy_uj").chmod(0o200)
    probe = probe_rapl(powercap.root)
    assert not probe.available
    assert "sudo chmod o+r" in probe.detail


def test_counter_vanishing_mid_run_is_unavailable(powercap: FakePowercap, tmp_path: Path) -> None:
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    (powercap.zones["0:1"] / "energy_uj").write_text("garbage\n")
    dram = meter.stop(USAGE).components["cpu_dram"]
    assert dram.energy_j is None
    assert dram.reason is not None
    assert "garbage" in dram.reason


def test_factory_uses_rapl_when_readable(powercap: FakePowercap) -> None:
    config = MeterConfig(powercap_root=powercap.root, use_gpu=False)
    meters = create_meters(config, environ={})
    assert [m.name for m in meters] == ["rapl", "unavailable"]
    assert {r.name: r.available for r in probe_meters(config, environ={})} == {"rapl": True}
    for meter in meters:
        meter.close()


def test_factory_estimates_when_rapl_unreadable_and_says_how_to_fix(
    powercap: FakePowercap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deny(monkeypatch, powercap.root / "intel-rapl:0" / "energy_uj")
    meters = create_meters(MeterConfig(powercap_root=powercap.root, use_gpu=False), environ={})
    assert [m.name for m in meters] == ["estimate", "unavailable"]
    for meter in meters:
        meter.start(tmp_path)
    readings = [m.stop(USAGE) for m in meters]
    cpu = readings[0].components["cpu_pkg"]
    assert cpu.method == "estimated"
    assert cpu.reason is not None
    assert "sudo chmod o+r" in cpu.reason
    dram = readings[1].components["cpu_dram"]
    assert dram.reason is not None
    assert "sudo chmod o+r" in dram.reason


@given(
    start_uj=st.integers(min_value=0, max_value=MAX_RANGE_UJ - 1),
    steps_uj=st.lists(st.integers(min_value=0, max_value=MAX_RANGE_UJ - 1), max_size=30),
)
def test_wraparound_arithmetic_recovers_every_increment(start_uj: int, steps_uj: list[int]) -> None:
    counter_uj, total_uj, wraps = start_uj, 0, 0
    for step_uj in steps_uj:
        after_uj = (counter_uj + step_uj) % MAX_RANGE_UJ
        delta_uj, wrapped = counter_delta_uj(counter_uj, after_uj, MAX_RANGE_UJ)
        total_uj += delta_uj
        wraps += wrapped
        counter_uj = after_uj
    assert total_uj == sum(steps_uj)
    assert wraps == (start_uj + sum(steps_uj)) // MAX_RANGE_UJ


@settings(max_examples=25, deadline=None)
@given(
    max_range_uj=st.integers(min_value=10, max_value=10**12),
    start_fraction=st.floats(min_value=0.0, max_value=0.999),
    step_fractions=st.lists(st.floats(min_value=0.0, max_value=0.999), max_size=8),
)
def test_meter_total_matches_energy_added_through_sysfs(
    max_range_uj: int, start_fraction: float, step_fractions: list[float]
) -> None:
    with tempfile.TemporaryDirectory() as base:
        tree = FakePowercap(Path(base))
        tree.add_zone("0", "package-0", int(start_fraction * max_range_uj), max_range_uj)
        meter = RaplMeter(tree.root, poll_s=IDLE_POLL_S)
        meter.start(Path(base))
        steps_uj = [int(f * max_range_uj) for f in step_fractions]
        for step_uj in steps_uj:
            tree.advance("0", step_uj)
            meter.poll()
        pkg = meter.stop(USAGE).components["cpu_pkg"]
        meter.close()
    assert pkg.energy_j == pytest.approx(sum(steps_uj) / 1e6, rel=1e-12, abs=1e-9)


def test_peek_reads_the_counters_so_far(powercap: FakePowercap, tmp_path: Path) -> None:
    meter = RaplMeter(powercap.root, poll_s=IDLE_POLL_S)
    meter.start(tmp_path)
    powercap.advance("0", 10_000_000)
    so_far = meter.peek(USAGE)
    assert so_far is not None
    assert so_far.components["cpu_pkg"].energy_j == pytest.approx(10.0)
    assert so_far.components["cpu_pkg"].method == "counter"
    powercap.advance("0", 5_000_000)
    reading = meter.stop(USAGE)  # the window went on: the final figure has it all
    meter.close()
    assert reading.components["cpu_pkg"].energy_j == pytest.approx(15.0)
