"""Carbon estimates: a run's energy times a grid's carbon intensity and the site's PUE.

Always an *estimate*: the intensity is an annual average of a grid (or a figure the
study gives), not the mix at the hour and place the run drew its power. Nothing is
fetched at run time; regions come from a table bundled with the package
(:data:`TABLE_SOURCE`)::

    co2e_g = energy_j / 3.6e6 (kWh) x pue x intensity_g_per_kwh
"""

from __future__ import annotations

from hyperjoule.carbon._estimate import J_PER_KWH, CarbonEstimate, estimate_carbon
from hyperjoule.carbon._table import TABLE_SOURCE, GridIntensity, grid_intensities, lookup_region

__all__ = [
    "J_PER_KWH",
    "TABLE_SOURCE",
    "CarbonEstimate",
    "GridIntensity",
    "estimate_carbon",
    "grid_intensities",
    "lookup_region",
]
