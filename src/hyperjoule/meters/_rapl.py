"""CPU package and DRAM energy from RAPL counters through the Linux powercap sysfs tree.

Layout read (the kernel's, also used for AMD Zen CPUs)::

    /sys/class/powercap/intel-rapl:0/name                 "package-0"
    /sys/class/powercap/intel-rapl:0/energy_uj            cumulative µJ, wraps around
    /sys/class/powercap/intel-rapl:0/max_energy_range_uj  where it wraps
    /sys/class/powercap/intel-rapl:0:1/name               "dram"  (also inside intel-rapl:0/)

Counters are read at the window's boundaries and polled in between, so that every wrap
is seen (a counter wraps after a few hundred kJ: minutes at full load). RAPL measures
the whole socket, so figures are ``combined``: other work on the machine is included.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from hyperjoule.meters._base import Meter, MeterReading, ProbeResult, RunUsage
from hyperjoule.meters._sampler import PeriodicSampler, SampledWindow, open_timeline
from hyperjoule.meters._units import uj_to_j
from hyperjoule.records import EnergyComponent

__all__ = ["RaplMeter", "RaplZone", "counter_delta_uj", "discover_rapl_zones", "probe_rapl"]

logger = logging.getLogger(__name__)

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_DIR = re.compile(r"^intel-rapl:(\d+)$")
_SUBZONE_DIR = re.compile(r"^intel-rapl:(\d+):(\d+)$")
COMBINED_REASON = (
    "RAPL measures the whole CPU socket: every process on the machine, not only this run"
)


@dataclass(frozen=True)
class RaplZone:
    """One RAPL domain to read.

    Attributes:
        path: The zone's sysfs directory.
        domain: ``package`` or ``dram``.
        device: Name in records (``package-0``, ``package-0:dram``).
        max_energy_range_uj: Where ``energy_uj`` wraps to zero, in µJ; None if unreadable.
    """

    path: Path
    domain: Literal["package", "dram"]
    device: str
    max_energy_range_uj: int | None


def counter_delta_uj(before_uj: int, after_uj: int, max_energy_range_uj: int) -> tuple[int, int]:
    """Energy between two reads of a wrapping counter, and the wraps seen (0 or 1).

    The reads must be close enough that the counter wrapped at most once in between
    (the meter polls for that). Exact up to one RAPL energy unit (~61 µJ) per wrap.
    """
    if after_uj >= before_uj:
        return after_uj - before_uj, 0
    return max_energy_range_uj - before_uj + after_uj, 1


def discover_rapl_zones(powercap_root: Path = DEFAULT_POWERCAP_ROOT) -> list[RaplZone]:
    """Find the package and DRAM domains under ``powercap_root`` (none: empty list)."""
    zones: list[RaplZone] = []
    try:
        entries = sorted(powercap_root.iterdir(), key=lambda p: _zone_key(p.name))
    except OSError as e:
        logger.debug("no powercap tree at %s: %s", powercap_root, e)
        return zones
    for entry in entries:
        match = _PACKAGE_DIR.match(entry.name)
        name = _read_name(entry) if match else None
        # Top-level zones that are not packages (psys on laptops) measure something else.
        if match is None or name is None or not name.startswith("package"):
            continue
        zones.append(RaplZone(entry, "package", name, _read_int(entry / "max_energy_range_uj")))
        # Subzones are linked at the top level and nested in their package directory.
        subzones = {p.name: p for p in entries if _is_subzone_of(p.name, match.group(1))}
        with contextlib.suppress(OSError):
            subzones.update(
                {p.name: p for p in entry.iterdir() if _is_subzone_of(p.name, match.group(1))}
            )
        for sub_name in sorted(subzones, key=_zone_key):
            sub = subzones[sub_name]
            # core/uncore are parts of the package figure; only DRAM is separate energy.
            if _read_name(sub) == "dram":
                max_uj = _read_int(sub / "max_energy_range_uj")
                zones.append(RaplZone(sub, "dram", f"{name}:dram", max_uj))
    return zones


def _zone_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _is_subzone_of(name: str, package: str) -> bool:
    match = _SUBZONE_DIR.match(name)
    return match is not None and match.group(1) == package


def _read_name(zone_dir: Path) -> str | None:
    try:
        return (zone_dir / "name").read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_energy_uj(zone: RaplZone) -> int:
    """Read a zone's ``energy_uj``.

    Raises:
        OSError: The file cannot be read; a permission error carries the fix.
        ValueError: The file does not hold an integer.
    """
    path = zone.path / "energy_uj"
    try:
        return int(_read_sysfs(path))
    except PermissionError as e:
        raise PermissionError(permission_fix(path)) from e


def _read_sysfs(path: Path) -> str:
    """Read one sysfs attribute (the single place this module touches energy files)."""
    return path.read_text().strip()


def permission_fix(path: Path) -> str:
    """The message for an unreadable ``energy_uj``: what failed, why, and the fix."""
    root = path.parent.parent
    return (
        f"cannot read {path}: permission denied (Linux has made RAPL counters root-only "
        f"since 2020). hyperjoule never needs sudo; let users read them once with "
        f"'sudo chmod o+r {root}/intel-rapl:*/energy_uj' (until reboot; a udev rule or "
        f"systemd-tmpfiles line makes it permanent)"
    )


def probe_rapl(powercap_root: Path = DEFAULT_POWERCAP_ROOT) -> ProbeResult:
    """Say whether RAPL counters are readable under ``powercap_root``, and why not."""
    zones = discover_rapl_zones(powercap_root)
    packages = [z for z in zones if z.domain == "package"]
    if not packages:
        return ProbeResult(
            "rapl",
            False,
            f"no RAPL counters on this machine (no intel-rapl package domains under "
            f"{powercap_root}: not Linux, a virtual machine, or a CPU without RAPL)",
        )
    for zone in zones:
        try:
            read_energy_uj(zone)
        except (OSError, ValueError) as e:
            return ProbeResult("rapl", False, str(e))
    drams = [z.device for z in zones if z.domain == "dram"]
    names = ", ".join(z.device for z in packages)
    dram_text = f"{len(drams)} DRAM domain(s)" if drams else "no DRAM domain"
    return ProbeResult("rapl", True, f"RAPL counters for {names}; {dram_text}")


class _ZoneCounter:
    """Accumulates one zone's energy over a window, counting wraps."""

    def __init__(self, zone: RaplZone) -> None:
        self.zone = zone
        self.total_uj = 0
        self.wraps = 0
        self.error: str | None = None
        self.last_uj: int | None = None
        if zone.max_energy_range_uj is None:
            self.error = f"cannot read {zone.path / 'max_energy_range_uj'}"
        else:
            self.update()

    def update(self) -> None:
        if self.error is not None or self.zone.max_energy_range_uj is None:
            return
        try:
            now_uj = read_energy_uj(self.zone)
        except (OSError, ValueError) as e:
            self.error = str(e)
            return
        if self.last_uj is not None:
            delta_uj, wraps = counter_delta_uj(self.last_uj, now_uj, self.zone.max_energy_range_uj)
            self.total_uj += delta_uj
            self.wraps += wraps
        self.last_uj = now_uj


class RaplMeter(SampledWindow, Meter):
    """CPU package and DRAM energy from RAPL counters (method ``counter``, ``combined``).

    Args:
        powercap_root: Root of the powercap sysfs tree.
        poll_s: Period of the wrap-detection poll, in seconds; it must be shorter than
            the fastest wrap (``max_energy_range_uj`` / peak power: minutes), and each
            poll also adds a row to ``energy/cpu.csv``.
    """

    name = "rapl"
    components = ("cpu_pkg", "cpu_dram")

    def __init__(self, powercap_root: Path = DEFAULT_POWERCAP_ROOT, poll_s: float = 1.0) -> None:
        if not poll_s > 0:
            raise ValueError(f"poll_s must be positive, got {poll_s}")
        self.powercap_root = Path(powercap_root)
        self.poll_s = poll_s
        self.zones = discover_rapl_zones(self.powercap_root)
        self._counters: list[_ZoneCounter] = []
        self._sampler: PeriodicSampler | None = None
        self._timeline: TextIO | None = None
        self._t0_s = 0.0
        # poll() may be called while the poller thread runs.
        self._lock = threading.Lock()

    def _open_window(self, run_dir: Path) -> None:
        self._t0_s = time.monotonic()
        self._counters = [_ZoneCounter(zone) for zone in self.zones]
        self._timeline = (
            open_timeline(run_dir / "energy" / "cpu.csv", "time_s,device,energy_j")
            if self.zones
            else None
        )
        self._write_rows(self._t0_s)
        self._sampler = PeriodicSampler(self.poll_s, self._poll, name="hyperjoule-rapl")
        self._sampler.start()

    def poll(self) -> None:
        """Read every counter now, counting wraps (no-op outside a window).

        The poller thread calls this every ``poll_s``; a caller may add reads.
        """
        if self._window_open:
            self._poll(time.monotonic())

    def _poll(self, now_s: float) -> None:
        with self._lock:
            for counter in self._counters:
                counter.update()
            self._write_rows(now_s)

    def _write_rows(self, now_s: float) -> None:
        if self._timeline is None:
            return
        for c in self._counters:
            if c.error is None:
                energy_j = uj_to_j(c.total_uj)
                self._timeline.write(f"{now_s - self._t0_s:.3f},{c.zone.device},{energy_j:.6f}\n")

    def _peek_window(self, usage: RunUsage) -> MeterReading:
        self._poll(time.monotonic())  # counters read now; wraps counted as usual
        with self._lock:
            return MeterReading(
                {
                    "cpu_pkg": self._component("package", "no RAPL package domain"),
                    "cpu_dram": self._component("dram", "no RAPL DRAM domain"),
                }
            )

    def _close_window(self, usage: RunUsage) -> MeterReading:
        self._stop_sampler()
        self._poll(time.monotonic())
        files = ["energy/cpu.csv"] if self._timeline is not None else []
        self._close_timeline()
        return MeterReading(
            {
                "cpu_pkg": self._component("package", "no RAPL package domain"),
                "cpu_dram": self._component(
                    "dram", "no RAPL DRAM domain (this CPU's powercap tree exposes none)"
                ),
            },
            files=files,
        )

    def _component(self, domain: str, missing_reason: str) -> EnergyComponent:
        counters = [c for c in self._counters if c.zone.domain == domain]
        if not counters:
            return EnergyComponent.unavailable(f"{missing_reason} under {self.powercap_root}")
        errors = [c.error for c in counters if c.error is not None]
        if errors:
            # A sum over the readable zones only would silently under-count.
            return EnergyComponent.unavailable("; ".join(dict.fromkeys(errors)))
        return EnergyComponent(
            energy_j=uj_to_j(sum(c.total_uj for c in counters)),
            method="counter",
            devices=[c.zone.device for c in counters],
            attribution="combined",
            reason=COMBINED_REASON,
            wraps=sum(c.wraps for c in counters),
        )
