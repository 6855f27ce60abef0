"""Unit conversions of sensor readings to SI: the only place a meter scales a raw figure.

Vendor interfaces report in milli- and micro-units (NVML: mJ, mW; RAPL powercap: µJ);
records hold joules and watts. Every meter converts through these functions so that a
scale factor is written exactly once.
"""

from __future__ import annotations

__all__ = ["bytes_to_mib", "mj_to_j", "mw_to_w", "uj_to_j", "w_to_mw"]

_MILLI = 1e-3
_MICRO = 1e-6
_BYTES_PER_MIB = 2**20


def mj_to_j(energy_mj: float) -> float:
    """Convert millijoules (NVML total energy) to joules."""
    return energy_mj * _MILLI


def mw_to_w(power_mw: float) -> float:
    """Convert milliwatts (NVML power usage) to watts."""
    return power_mw * _MILLI


def uj_to_j(energy_uj: float) -> float:
    """Convert microjoules (RAPL ``energy_uj``) to joules."""
    return energy_uj * _MICRO


def bytes_to_mib(size_bytes: float) -> float:
    """Convert bytes (NVML memory info) to mebibytes."""
    return size_bytes / _BYTES_PER_MIB


def w_to_mw(power_w: float) -> int:
    """Watts to NVML's integer milliwatts (power limits)."""
    return int(round(power_w * 1000.0))
