"""A powercap sysfs tree in the kernel's real format, under a temporary directory.

Like the kernel's, the zones live under ``devices/virtual/powercap/intel-rapl/`` (DRAM and
core subzones nested in their package) and ``class/powercap/`` holds symlinks to every
zone; the meter is pointed at ``class/powercap``.
"""

from __future__ import annotations

from pathlib import Path

# The usual value on Intel server CPUs: 2^32 energy units of 61.035 µJ.
MAX_RANGE_UJ = 262143328850


class FakePowercap:
    """Builds zones and moves their counters like RAPL does (wrapping at the range)."""

    def __init__(self, base: Path) -> None:
        self.devices = base / "devices" / "virtual" / "powercap" / "intel-rapl"
        self.root = base / "class" / "powercap"
        self.devices.mkdir(parents=True)
        self.root.mkdir(parents=True)
        (self.devices / "enabled").write_text("1\n")
        (self.root / "intel-rapl").symlink_to(self.devices)
        self.zones: dict[str, Path] = {}

    def add_zone(
        self,
        zone_id: str,
        name: str,
        energy_uj: int = 0,
        max_range_uj: int = MAX_RANGE_UJ,
        parent: str | None = None,
        prefix: str = "intel-rapl",
    ) -> Path:
        """Add ``<prefix>:<zone_id>`` (nested in ``parent`` when given) and its symlink."""
        dirname = f"{prefix}:{zone_id}"
        where = self.devices if parent is None else self.zones[parent]
        zone = where / dirname
        zone.mkdir()
        (zone / "name").write_text(f"{name}\n")
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        (zone / "enabled").write_text("1\n")
        (zone / "constraint_0_name").write_text("long_term\n")
        (self.root / dirname).symlink_to(zone)
        self.zones[zone_id] = zone
        return zone

    def add_package(
        self, index: int, energy_uj: int = 0, dram_uj: int | None = 0, core: bool = True
    ) -> None:
        """A package zone with optional core and DRAM subzones, as on a server CPU."""
        self.add_zone(str(index), f"package-{index}", energy_uj)
        if core:
            self.add_zone(f"{index}:0", "core", 0, parent=str(index))
        if dram_uj is not None:
            self.add_zone(f"{index}:1", "dram", dram_uj, parent=str(index))

    def read(self, zone_id: str) -> int:
        return int((self.zones[zone_id] / "energy_uj").read_text())

    def set(self, zone_id: str, energy_uj: int) -> None:
        (self.zones[zone_id] / "energy_uj").write_text(f"{energy_uj}\n")

    def advance(self, zone_id: str, delta_uj: int) -> None:
        """Add energy, wrapping at ``max_energy_range_uj`` like the hardware counter."""
        max_uj = int((self.zones[zone_id] / "max_energy_range_uj").read_text())
        self.set(zone_id, (self.read(zone_id) + delta_uj) % max_uj)
