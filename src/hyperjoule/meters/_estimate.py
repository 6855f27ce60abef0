"""Meters that need no sensor: a labelled CPU-time estimate, and explicit unavailability."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hyperjoule.meters._base import Meter, MeterReading, RunUsage
from hyperjoule.records import ENERGY_COMPONENTS, EnergyComponent

__all__ = ["DEFAULT_CPU_WATTS_PER_CORE", "EstimateMeter", "UnavailableMeter"]

DEFAULT_CPU_WATTS_PER_CORE = 10.0
"""Power of one fully busy core, in watts: a mid-range server/desktop core (a 125 W TDP
package with 12 cores). Configure it for your CPU (TDP / cores) when it differs."""

NO_RAPL_REASON = "no RAPL counters on this machine"
NO_GPU_REASON = "no NVIDIA GPU / NVML not available"
NO_DRAM_REASON = "no RAPL DRAM domain"


class EstimateMeter(Meter):
    """Estimates CPU package energy as CPU time x power per busy core; labelled ``estimated``.

    For machines without RAPL. The estimate covers only the run's own process tree
    (``attribution`` ``exclusive``) and its reason says exactly how it was made. Without
    the run's CPU time the component is unavailable, never zero.

    Args:
        cpu_watts_per_core: Power of one fully busy core, in watts.
        why: Why an estimate is used instead of a counter; ends up in the reason.
        unavailable: Further components to report unavailable, with their reasons.
            Defaults to the GPU and DRAM, which this meter cannot measure; pass ``{}``
            when other meters cover them.
    """

    name = "estimate"

    def __init__(
        self,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        *,
        why: str = NO_RAPL_REASON,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        if not cpu_watts_per_core > 0:
            raise ValueError(f"cpu_watts_per_core must be positive, got {cpu_watts_per_core}")
        self.cpu_watts_per_core = float(cpu_watts_per_core)
        self.why = why
        if unavailable is None:
            unavailable = {"gpu": NO_GPU_REASON, "cpu_dram": NO_DRAM_REASON}
        self.unavailable = dict(unavailable)
        # cpu_pkg is this meter's own figure; anything else must be a known component.
        unknown = set(self.unavailable) - (set(ENERGY_COMPONENTS) - {"cpu_pkg"})
        if unknown:
            raise ValueError(f"cannot mark {sorted(unknown)} unavailable in the estimate meter")
        self.components = tuple(
            c for c in ENERGY_COMPONENTS if c == "cpu_pkg" or c in self.unavailable
        )

    def _open_window(self, run_dir: Path) -> None:
        pass

    def _peek_window(self, usage: RunUsage) -> MeterReading:
        return self._close_window(usage)  # the estimate needs nothing but the usage so far

    def _close_window(self, usage: RunUsage) -> MeterReading:
        components = {name: EnergyComponent.unavailable(r) for name, r in self.unavailable.items()}
        cpu_time_s = usage.cpu_time_s
        if cpu_time_s is None or not cpu_time_s >= 0:
            components["cpu_pkg"] = EnergyComponent.unavailable(
                f"no CPU time measured for the run, so no estimate either; {self.why}"
            )
        else:
            components["cpu_pkg"] = EnergyComponent(
                energy_j=cpu_time_s * self.cpu_watts_per_core,
                method="estimated",
                devices=["cpu"],
                attribution="exclusive",
                reason=(
                    f"estimate: {cpu_time_s:.1f} s CPU time x {self.cpu_watts_per_core:g} W "
                    f"per busy core; {self.why}"
                ),
            )
        return MeterReading(components)


class UnavailableMeter(Meter):
    """Reports each given component unavailable with its reason (nothing can measure it).

    Args:
        reasons: Component name → why it cannot be measured.
        name: Meter name in records and logs.
    """

    def __init__(self, reasons: Mapping[str, str], *, name: str = "unavailable") -> None:
        unknown = set(reasons) - set(ENERGY_COMPONENTS)
        if unknown:
            raise ValueError(f"unknown energy components {sorted(unknown)}")
        empty = [c for c, reason in reasons.items() if not reason]
        if empty:
            raise ValueError(f"components {empty} need a reason")
        self.name = name
        self.reasons = dict(reasons)
        self.components = tuple(c for c in ENERGY_COMPONENTS if c in self.reasons)

    def _open_window(self, run_dir: Path) -> None:
        pass

    def _close_window(self, usage: RunUsage) -> MeterReading:
        return MeterReading(
            {c: EnergyComponent.unavailable(self.reasons[c]) for c in self.components}
        )
