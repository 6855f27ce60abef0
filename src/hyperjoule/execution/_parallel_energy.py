"""Honest energy of parallel runs: what includes the background, and what is its own.

A figure read at device level (RAPL, NVML) while a background ran covers both jobs: it
is ``combined``. A per-process estimate covers only the foreground's process tree: it
stays ``exclusive``, and the background block carries the background's own estimate,
made the same way from the CPU time its process groups used during the foreground.
"""

from __future__ import annotations

from typing import Any

from hyperjoule.execution._background import BackgroundSet
from hyperjoule.execution._result import BackgroundReport
from hyperjoule.records import EnergyBlock

__all__ = ["background_estimate", "mark_parallel"]

COMBINED_NOTE = "includes the background load of this parallel run"


def background_cpu_s(backgrounds: BackgroundSet, window: tuple[float, float]) -> float | None:
    """CPU time of every background's process groups inside ``window``, in seconds.

    Integrated from the load sampler (percent of one core over each sample interval);
    None when no sample fell inside the window.
    """
    total_s = 0.0
    seen = False
    for job in backgrounds.jobs:
        previous: float | None = None
        for sample in job.samples:
            if previous is not None and sample.cpu_pct is not None:
                start_s, end_s = max(previous, window[0]), min(sample.time_s, window[1])
                if end_s > start_s:
                    total_s += sample.cpu_pct / 100.0 * (end_s - start_s)
                    seen = True
            previous = sample.time_s
    return total_s if seen else None


def background_estimate(
    backgrounds: BackgroundSet, window: tuple[float, float], watts_per_core: float | None
) -> dict[str, Any] | None:
    """The background's own CPU estimate during the foreground (None without one).

    Only made when the foreground's CPU figure is itself an estimate
    (``watts_per_core`` given): it uses the same power per busy core.
    """
    if watts_per_core is None:
        return None
    cpu_s = background_cpu_s(backgrounds, window)
    if cpu_s is None:
        return {
            "cpu_pkg_j": None,
            "method": "unavailable",
            "reason": "no CPU-time sample of the background during the foreground",
        }
    return {
        "cpu_pkg_j": cpu_s * watts_per_core,
        "cpu_time_s": cpu_s,
        "method": "estimated",
        "reason": (
            f"CPU time of the background's process groups during the foreground "
            f"({cpu_s:.1f} s) x {watts_per_core:g} W per busy core"
        ),
    }


def mark_parallel(
    energy: EnergyBlock, background: BackgroundReport, estimate: dict[str, Any] | None
) -> None:
    """Say on every figure of a parallel run whether it includes the background."""
    for component in energy.components.values():
        if component.energy_j is None:
            continue
        if component.method == "estimated":
            component.attribution = "exclusive"
            note = (
                "the foreground's own process tree; the background's estimate is in "
                "background.energy"
            )
        else:
            if component.attribution == "exclusive":
                component.attribution = "combined"
            note = COMBINED_NOTE
        component.reason = f"{component.reason}; {note}" if component.reason else note
    if estimate is not None:
        background.details["energy"] = estimate
