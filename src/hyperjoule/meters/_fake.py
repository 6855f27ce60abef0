"""A deterministic meter that replays given power, for tests and demos without hardware."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hyperjoule.meters._base import Meter, MeterReading, RunUsage
from hyperjoule.meters._sampler import trapezoid_energy_j
from hyperjoule.records import (
    ENERGY_COMPONENTS,
    METHODS,
    Attribution,
    EnergyComponent,
    Method,
    PowerBlock,
)

__all__ = ["FakeMeter", "PowerTrace"]

PowerTrace = Sequence[tuple[float, float]]
"""Points ``(time_s, power_w)`` from the window's start; linear between points, held
constant before the first and after the last."""


class FakeMeter(Meter):
    """Replays the same power every window: energy = power integrated over the duration.

    Args:
        power_w: Component → constant power in watts, or a :data:`PowerTrace`.
        method: Method the readings claim (not ``unavailable``).
        name: Meter name.
        attribution: Attribution the readings claim.
        unavailable: Further components to report unavailable, with reasons.
        power: Power block to return with every reading.
        timeline: Write ``energy/<name>.csv`` (time_s, component, power_w) each window.

    Attributes:
        windows: The :class:`RunUsage` of every closed window, in order.
        run_dirs: The run directory of every opened window, in order.
    """

    def __init__(
        self,
        power_w: Mapping[str, float | PowerTrace],
        *,
        method: Method = "integrated",
        name: str = "fake",
        attribution: Attribution = "exclusive",
        unavailable: Mapping[str, str] | None = None,
        power: PowerBlock | None = None,
        timeline: bool = False,
    ) -> None:
        if method not in METHODS or method == "unavailable":
            raise ValueError(f"method must be one of {METHODS[:-1]}, got {method!r}")
        self.unavailable = dict(unavailable or {})
        unknown = (set(power_w) | set(self.unavailable)) - set(ENERGY_COMPONENTS)
        if unknown or set(power_w) & set(self.unavailable):
            raise ValueError(f"bad components: {sorted(power_w)} / {sorted(self.unavailable)}")
        self.name = name
        self.power_w = dict(power_w)
        self.method: Method = method
        self.attribution: Attribution = attribution
        self.power = power
        self.timeline = timeline
        self.components = tuple(
            c for c in ENERGY_COMPONENTS if c in self.power_w or c in self.unavailable
        )
        self.windows: list[RunUsage] = []
        self.run_dirs: list[Path] = []

    def _open_window(self, run_dir: Path) -> None:
        self.run_dirs.append(run_dir)

    def _peek_window(self, usage: RunUsage) -> MeterReading:
        return self._reading(usage, timeline=False)

    def _close_window(self, usage: RunUsage) -> MeterReading:
        self.windows.append(usage)
        return self._reading(usage, timeline=self.timeline)

    def _reading(self, usage: RunUsage, *, timeline: bool) -> MeterReading:
        duration_s = max(0.0, usage.duration_s)
        components = {c: EnergyComponent.unavailable(r) for c, r in self.unavailable.items()}
        for comp, spec in self.power_w.items():
            components[comp] = EnergyComponent(
                energy_j=_energy_j(spec, duration_s),
                method=self.method,
                devices=[f"fake-{comp}"],
                attribution=self.attribution,
                reason=f"fake meter {self.name!r}: replayed power",
            )
        files: list[str] = []
        if timeline:
            files.append(self._write_timeline(duration_s))
        return MeterReading(components, power=self.power, files=files)

    def _write_timeline(self, duration_s: float) -> str:
        relative = f"energy/{self.name}.csv"
        path = self.run_dirs[-1] / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["time_s,component,power_w"]
        for comp, spec in self.power_w.items():
            for time_s in (0.0, duration_s):
                lines.append(f"{time_s:.3f},{comp},{_power_at_w(spec, time_s):.3f}")
        path.write_text("\n".join(lines) + "\n")
        return relative


def _energy_j(spec: float | PowerTrace, duration_s: float) -> float:
    if isinstance(spec, (int, float)):
        return float(spec) * duration_s
    inner = sorted(t for t, _ in spec if 0.0 < t < duration_s)
    times_s = [0.0, *inner, duration_s]
    return trapezoid_energy_j(times_s, [_power_at_w(spec, t) for t in times_s])


def _power_at_w(spec: float | PowerTrace, time_s: float) -> float:
    if isinstance(spec, (int, float)):
        return float(spec)
    points = sorted(spec)
    if not points:
        raise ValueError("a power trace needs at least one point")
    if time_s <= points[0][0]:
        return points[0][1]
    for (t0, p0), (t1, p1) in zip(points, points[1:], strict=False):
        if time_s <= t1:
            return p0 if t1 == t0 else p0 + (p1 - p0) * (time_s - t0) / (t1 - t0)
    return points[-1][1]
