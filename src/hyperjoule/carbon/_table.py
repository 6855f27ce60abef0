"""The bundled table of annual average grid carbon intensities by country."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib.resources import files

__all__ = ["TABLE_SOURCE", "GridIntensity", "grid_intensities", "lookup_region"]

TABLE_SOURCE = (
    "Ember (Yearly Electricity Data) via Our World in Data, 'Carbon intensity of "
    "electricity generation' (2023), CC BY 4.0"
)
"""Where the bundled figures come from (also in the README), named in every estimate."""


@dataclass(frozen=True)
class GridIntensity:
    """One country's annual average carbon intensity of electricity generation.

    Attributes:
        iso3: ISO 3166-1 alpha-3 code (``DEU``).
        country: English name.
        year: The year the average is for.
        intensity_g_per_kwh: Grams of CO₂-equivalent per kWh generated (lifecycle).
    """

    iso3: str
    country: str
    year: int
    intensity_g_per_kwh: float


@functools.cache
def grid_intensities() -> dict[str, GridIntensity]:
    """The bundled table, by ISO3 code (read from package data once)."""
    text = files("hyperjoule.carbon").joinpath("grid_intensity.csv").read_text(encoding="utf-8")
    return {
        row["iso3"]: GridIntensity(
            row["iso3"], row["country"], int(row["year"]), float(row["intensity_g_per_kwh"])
        )
        for row in csv.DictReader(io.StringIO(text))
    }


def lookup_region(code: str) -> GridIntensity:
    """The bundled figure of a country.

    Raises:
        KeyError: The table has no such code (the message lists the codes it has).
    """
    table = grid_intensities()
    found = table.get(code.upper())
    if found is None:
        raise KeyError(
            f"no bundled carbon intensity for region {code!r}; known: {', '.join(sorted(table))}"
            "; or give intensity_g_per_kwh instead"
        )
    return found
