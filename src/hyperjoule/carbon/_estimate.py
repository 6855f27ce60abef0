"""A run's CO₂-equivalent from its energy, a carbon intensity and a PUE."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["J_PER_KWH", "CarbonEstimate", "estimate_carbon"]

J_PER_KWH = 3.6e6
"""Joules in one kilowatt-hour: the one place energy becomes kWh."""


@dataclass(frozen=True)
class CarbonEstimate:
    """The ``carbon`` block of a run record: always an estimate, with its inputs.

    Attributes:
        intensity_g_per_kwh: Grid carbon intensity used, grams CO₂e per kWh.
        pue: Power usage effectiveness of the site (1.0: only the machine's energy).
        co2e_g: Estimated grams CO₂e of the run's (last attempt's) energy; None when the
            energy is unavailable (``reason`` says why), never 0 for unknown.
        attempts_co2e_g: The same for the energy of all attempts (retries included).
        source: Where the intensity comes from (the study file, or the bundled table
            with its region, year and licence).
        region: ISO3 code when the intensity comes from the bundled table.
        year: The year of that table's figure.
        reason: Why ``co2e_g`` is missing.
        method: Always ``estimated``.
    """

    intensity_g_per_kwh: float
    pue: float
    co2e_g: float | None
    attempts_co2e_g: float | None
    source: str
    region: str | None = None
    year: int | None = None
    reason: str | None = None
    method: str = "estimated"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``run.json``'s ``carbon``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CarbonEstimate:
        """Rebuild a block written by :meth:`to_dict` (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _grams(energy_j: float | None, intensity_g_per_kwh: float, pue: float) -> float | None:
    if energy_j is None:
        return None
    return energy_j / J_PER_KWH * pue * intensity_g_per_kwh


def estimate_carbon(
    energy_j: float | None,
    attempts_energy_j: float | None,
    *,
    intensity_g_per_kwh: float,
    pue: float,
    source: str,
    region: str | None = None,
    year: int | None = None,
    energy_reason: str | None = None,
) -> CarbonEstimate:
    """Estimate CO₂e: ``energy_j / 3.6e6 x pue x intensity_g_per_kwh``.

    Args:
        energy_j: The run's energy (its last attempt), joules; None when unavailable.
        attempts_energy_j: The energy of all its attempts, joules; None when unavailable.
        intensity_g_per_kwh: Grams CO₂e per kWh.
        pue: Power usage effectiveness (>= 1).
        source: Where the intensity comes from.
        region: ISO3 code of a bundled figure.
        year: Year of a bundled figure.
        energy_reason: Why the energy is unavailable (kept as the reason).
    """
    co2e_g = _grams(energy_j, intensity_g_per_kwh, pue)
    reason = None
    if co2e_g is None:
        reason = "no energy figure for the run" + (f" ({energy_reason})" if energy_reason else "")
    return CarbonEstimate(
        intensity_g_per_kwh=intensity_g_per_kwh,
        pue=pue,
        co2e_g=co2e_g,
        attempts_co2e_g=_grams(attempts_energy_j, intensity_g_per_kwh, pue),
        source=source,
        region=region,
        year=year,
        reason=reason,
    )
