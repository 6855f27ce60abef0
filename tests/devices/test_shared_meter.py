"""Shared device meters: concurrent keyed windows, apportioned shares that add up.

Real parts where the machine has them (procfs accounting of real processes, the RAPL
meter over a sysfs tree in the kernel's format); fakes only for hardware (NVML, power).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "meters"))

from fake_nvml import two_gpus  # noqa: E402
from fake_powercap import FakePowercap  # noqa: E402

from hyperjoule.devices import NodeDevices, SharedMeter, group_cpu_s  # noqa: E402
from hyperjoule.meters import (  # noqa: E402
    EstimateMeter,
    FakeMeter,
    MeterConfig,
    RaplMeter,
    RunUsage,
)


class FakeCpu:
    """CPU time per process group, set by the test (seconds)."""

    def __init__(self) -> None:
        self.cpu_s: dict[int, float] = {}

    def __call__(self, pgids: Iterable[int]) -> float:
        return sum(self.cpu_s.get(p, 0.0) for p in pgids)


def _device_total_j(meter: FakeMeter, power_w: float) -> float:
    return sum(power_w * usage.duration_s for usage in meter.windows)


def test_lone_window_is_exclusive_and_exact(tmp_path: Path) -> None:
    meter = FakeMeter({"cpu_pkg": 50.0}, timeline=True)
    shared = SharedMeter(meter, tmp_path / "scratch")
    shared.open("a", tmp_path / "a")
    reading = shared.close("a", RunUsage(duration_s=2.0, cpu_time_s=1.0))
    comp = reading.components["cpu_pkg"]
    # Alone for its whole life: the run's own usage reaches the meter unchanged.
    assert comp.energy_j == pytest.approx(100.0)
    assert comp.attribution == "exclusive" and comp.share is None
    assert reading.files == ["energy/fake.csv"]
    assert (tmp_path / "a" / "energy" / "fake.csv").is_file()


def test_overlapping_windows_split_the_device_energy_by_cpu_time(tmp_path: Path) -> None:
    meter = FakeMeter({"cpu_pkg": 100.0}, timeline=True)
    cpu = FakeCpu()
    shared = SharedMeter(meter, tmp_path / "scratch", cpu_reader=cpu)
    shared.open("a", tmp_path / "a")
    shared.attach("a", 101)
    time.sleep(0.05)
    shared.open("b", tmp_path / "b")
    shared.attach("b", 202)
    time.sleep(0.05)
    cpu.cpu_s = {101: 3.0, 202: 1.0}  # a used 3x the CPU of b while both ran
    reading_a = shared.close("a", RunUsage(duration_s=0.1, cpu_time_s=3.0))
    time.sleep(0.05)
    reading_b = shared.close("b", RunUsage(duration_s=0.1, cpu_time_s=1.5))
    a, b = reading_a.components["cpu_pkg"], reading_b.components["cpu_pkg"]
    assert a.energy_j is not None and b.energy_j is not None
    # Shares of every segment add up to the device's energy: counted once.
    assert a.energy_j + b.energy_j == pytest.approx(_device_total_j(meter, 100.0))
    for comp in (a, b):
        assert comp.attribution == "apportioned"
        assert comp.share_basis is not None and "cpu_time" in comp.share_basis
        assert comp.device_energy_j is not None and 0.0 < (comp.share or 0.0) < 1.0
        assert comp.energy_j == pytest.approx((comp.share or 0.0) * comp.device_energy_j)
        assert "apportioned" in (comp.reason or "")
    # Each window's timeline covers its own span, segments shifted onto its clock.
    lines = (tmp_path / "b" / "energy" / "fake.csv").read_text().splitlines()
    assert lines[0] == "time_s,component,power_w" and len(lines) > 3
    assert not list((tmp_path / "scratch").iterdir()), "segment files left behind"


def test_no_cpu_time_splits_equally_and_says_so(tmp_path: Path) -> None:
    meter = FakeMeter({"gpu": 200.0})
    shared = SharedMeter(meter, tmp_path / "scratch", cpu_reader=FakeCpu())
    shared.open("a", tmp_path / "a")
    shared.open("b", tmp_path / "b")
    a = shared.close("a", RunUsage(0.0, None)).components["gpu"]
    b = shared.close("b", RunUsage(0.0, None)).components["gpu"]
    # Segments: a alone, both (split in half), b alone.
    a_alone_j, shared_j, b_alone_j = (200.0 * u.duration_s for u in meter.windows)
    assert a.energy_j == pytest.approx(a_alone_j + shared_j / 2)
    assert b.energy_j == pytest.approx(shared_j / 2 + b_alone_j)
    assert "equal" in (a.share_basis or "")


def test_window_keys_are_checked(tmp_path: Path) -> None:
    shared = SharedMeter(FakeMeter({"gpu": 1.0}), tmp_path)
    shared.open("a", tmp_path)
    with pytest.raises(RuntimeError):
        shared.open("a", tmp_path)
    with pytest.raises(RuntimeError):
        shared.close("b", RunUsage(1.0))
    shared.abort("a")
    assert shared.open_keys == []


def test_real_rapl_counter_shares_add_up_to_the_counter(tmp_path: Path) -> None:
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0, energy_uj=1_000_000, dram_uj=None, core=False)
    rapl = RaplMeter(powercap.root, poll_s=10.0)
    cpu = FakeCpu()
    shared = SharedMeter(rapl, tmp_path / "scratch", cpu_reader=cpu)
    shared.open("a", tmp_path / "a")
    shared.attach("a", 1)
    powercap.advance("0", 10_000_000)  # 10 J with a alone
    shared.open("b", tmp_path / "b")
    shared.attach("b", 2)
    powercap.advance("0", 20_000_000)  # 20 J shared, a:b CPU 1:1
    cpu.cpu_s = {1: 2.0, 2: 2.0}
    a = shared.close("a", RunUsage(1.0, 2.0)).components["cpu_pkg"]
    powercap.advance("0", 5_000_000)  # 5 J with b alone
    b = shared.close("b", RunUsage(1.0, 2.0)).components["cpu_pkg"]
    assert a.method == "counter" and b.method == "counter"
    assert a.energy_j == pytest.approx(20.0)
    assert b.energy_j == pytest.approx(15.0)
    assert (a.energy_j or 0) + (b.energy_j or 0) == pytest.approx(35.0)
    assert a.device_energy_j == pytest.approx(30.0) and b.device_energy_j == pytest.approx(25.0)
    rapl.close()


def test_real_processes_are_accounted_by_process_group() -> None:
    burner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend=time.time()+0.6\nwhile time.time()<end: pass"],
        start_new_session=True,
    )
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.6)"], start_new_session=True
    )
    try:
        time.sleep(0.5)
        busy_s, idle_s = group_cpu_s([burner.pid]), group_cpu_s([idle.pid])
        assert busy_s > idle_s
        assert busy_s > 0.05
    finally:
        burner.wait()
        idle.wait()
    assert group_cpu_s([burner.pid]) == 0.0  # gone: its ticks went with it


def test_node_devices_share_device_meters_and_copy_process_ones(tmp_path: Path) -> None:
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0)
    config = MeterConfig(powercap_root=powercap.root)
    devices = NodeDevices(config, nvml=two_gpus(), scratch_dir=tmp_path / "scratch")
    env: dict[str, str] = {}
    w0 = devices.open_window("r0/1", gpus=(0,), environ=env, run_dir=tmp_path / "r0")
    w1 = devices.open_window("r1/1", gpus=(1,), environ=env, run_dir=tmp_path / "r1")
    powercap.advance("0", 4_000_000)
    r0 = {n: c for r in w0.close(RunUsage(0.2, 0.1)) for n, c in r.components.items()}
    r1 = {n: c for r in w1.close(RunUsage(0.2, 0.1)) for n, c in r.components.items()}
    # Disjoint GPUs: each run's GPU figure is its own.
    assert r0["gpu"].devices != r1["gpu"].devices
    assert r0["gpu"].attribution == "exclusive" == r1["gpu"].attribution
    # One CPU package, one shared meter: both windows split the same counter.
    assert r0["cpu_pkg"].attribution == "apportioned" == r1["cpu_pkg"].attribution
    total = (r0["cpu_pkg"].energy_j or 0) + (r1["cpu_pkg"].energy_j or 0)
    assert total == pytest.approx(4.0)
    rapl_meters = {id(m) for m in devices.all_meters() if isinstance(m, RaplMeter)}
    assert len(rapl_meters) == 2  # created per selection, but only one is ever read
    devices.close()


def test_cpu_estimate_is_per_window_and_exclusive(tmp_path: Path) -> None:
    devices = NodeDevices(fixed=[EstimateMeter(10.0)], scratch_dir=tmp_path)
    w0 = devices.open_window("a", gpus=None, environ={}, run_dir=tmp_path / "a")
    w1 = devices.open_window("b", gpus=None, environ={}, run_dir=tmp_path / "b")
    assert w0.cpu_watts_per_core == 10.0
    a = w0.close(RunUsage(1.0, 2.0))[0].components["cpu_pkg"]
    b = w1.close(RunUsage(1.0, 0.5))[0].components["cpu_pkg"]
    assert (a.energy_j, b.energy_j) == (pytest.approx(20.0), pytest.approx(5.0))
    assert a.attribution == "exclusive" == b.attribution
    devices.close()
