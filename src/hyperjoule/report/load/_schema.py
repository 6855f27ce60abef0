"""The flat run schema: column names, order and types (``hyperjoule/docs/export-schema.md``).

One row per run. Columns, in order: :data:`LEADING_COLUMNS`; ``hp_<name>`` for every
hyperparameter (sorted, typed as recorded); ``metric_<name>`` for every metric (sorted,
float); :data:`TRAILING_COLUMNS`. Units are in the names. A figure that was not measured
is missing (NaN / NA), never 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hyperjoule.records import ENERGY_COMPONENTS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ATTEMPT_COLUMNS",
    "ATTEMPT_FIELDS",
    "BACKGROUND_COLUMNS",
    "BOOL_COLUMNS",
    "CARBON_COLUMNS",
    "FLOAT_COLUMNS",
    "HP_PREFIX",
    "INT_COLUMNS",
    "LEADING_COLUMNS",
    "METRIC_PREFIX",
    "POWER_COLUMNS",
    "TIME_COLUMNS",
    "TRAILING_COLUMNS",
    "apply_schema_dtypes",
    "hp_columns",
    "metric_columns",
    "ordered_columns",
    "typed_hp_series",
]

HP_PREFIX = "hp_"
METRIC_PREFIX = "metric_"

LEADING_COLUMNS = (
    "run_id",
    "study",
    "session",
    "slot_id",
    "target",
    "model",
    "mode",
    "mutated",
    "status",
    "attempts",
    "exit_code",
    "started_at",
    "ended_at",
    "duration_s",
    "cpu_time_s",
)
"""Columns before the ``hp_*`` and ``metric_*`` ones."""

ENERGY_J_COLUMNS = (*(f"energy_{c}_j" for c in ENERGY_COMPONENTS), "energy_total_j")
NET_ENERGY_COLUMNS = tuple(f"energy_{c}_net_j" for c in ENERGY_COMPONENTS)
"""Gross minus idle baseline power x duration; empty without a baseline of the devices."""
POWER_COLUMNS = (
    "power_gpu_avg_w",
    "power_gpu_max_w",
    "power_gpu_min_w",
    "power_gpu_temp_avg_c",
    "power_gpu_temp_max_c",
    "power_gpu_util_avg_pct",
    "power_gpu_util_max_pct",
    "power_samples",
)
BACKGROUND_COLUMNS = (
    "background_target",
    "background_model",
    "background_effective",
    "background_runs",
)

CARBON_COLUMNS = (
    "carbon_co2e_g",
    "carbon_attempts_co2e_g",
    "carbon_intensity_g_per_kwh",
    "carbon_pue",
    "carbon_source",
)
"""Estimated CO₂e (``carbon`` in study.yaml); all missing when the study asked for none."""

TRAILING_COLUMNS = (
    *ENERGY_J_COLUMNS,
    *NET_ENERGY_COLUMNS,
    *(f"energy_{c}_method" for c in (*ENERGY_COMPONENTS, "total")),
    *(f"energy_{c}_attribution" for c in (*ENERGY_COMPONENTS, "total")),
    *(f"energy_{c}_share" for c in ENERGY_COMPONENTS),
    *(f"energy_{c}_devices" for c in ENERGY_COMPONENTS),
    *(f"energy_{c}_reason" for c in ENERGY_COMPONENTS),
    *POWER_COLUMNS,
    *BACKGROUND_COLUMNS,
    "attempts_duration_s",
    "attempts_energy_total_j",
    "attempts_energy_missing",
    "error",
    "run_dir",
    *CARBON_COLUMNS,
)
"""Columns after the ``hp_*`` and ``metric_*`` ones."""

ATTEMPT_FIELDS = (
    "attempt",
    "status",
    "exit_code",
    "duration_s",
    "cpu_time_s",
    "energy_total_j",
    "energy_method",
)
"""What is read from every entry of a record's ``attempt_log``, in this order."""

ATTEMPT_COLUMNS = ("run_id", "study", "target", "model", "mode", "run_status", *ATTEMPT_FIELDS)
"""Columns of ``load_attempts``: one row per attempt of every run (retries included)."""

INT_COLUMNS = frozenset(
    {
        "attempts",
        "exit_code",
        "power_samples",
        "background_runs",
        "attempts_energy_missing",
        "attempt",
    }
)
FLOAT_COLUMNS = frozenset(
    {
        "duration_s",
        "cpu_time_s",
        *ENERGY_J_COLUMNS,
        *NET_ENERGY_COLUMNS,
        *(c for c in POWER_COLUMNS if c != "power_samples"),
        "attempts_duration_s",
        "attempts_energy_total_j",
        *(c for c in CARBON_COLUMNS if c != "carbon_source"),
    }
)
BOOL_COLUMNS = frozenset({"background_effective"})
TIME_COLUMNS = frozenset({"started_at", "ended_at"})


def hp_columns(columns: Iterable[str]) -> list[str]:
    """Return the ``hp_*`` columns among ``columns``, in order."""
    return [c for c in columns if c.startswith(HP_PREFIX)]


def metric_columns(columns: Iterable[str]) -> list[str]:
    """Return the ``metric_*`` columns among ``columns``, in order."""
    return [c for c in columns if c.startswith(METRIC_PREFIX)]


def ordered_columns(columns: Iterable[str]) -> list[str]:
    """The schema's column order for a table holding ``columns`` (hp/metric ones sorted)."""
    names = list(columns)
    return [
        *LEADING_COLUMNS,
        *sorted(hp_columns(names)),
        *sorted(metric_columns(names)),
        *TRAILING_COLUMNS,
    ]


def typed_hp_series(values: list[Any], name: str) -> pd.Series[Any]:
    """A hyperparameter column typed by its values: boolean, Int64, float64 or str."""
    import pandas as pd

    kinds = {type(v) for v in values if v is not None}
    series: pd.Series[Any]
    if kinds == {bool}:
        series = pd.Series(values, dtype="boolean", name=name)
    elif kinds == {int}:
        series = pd.Series(values, dtype="Int64", name=name)
    elif kinds and kinds <= {int, float}:
        floats = [float(v) if v is not None else None for v in values]
        series = pd.Series(floats, dtype="float64", name=name)
    elif not kinds:
        series = pd.Series(values, dtype="float64", name=name)
    else:
        texts = [None if v is None else str(v) for v in values]
        series = pd.Series(texts, dtype="str", name=name)
    return series


def apply_schema_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the schema's columns their documented types (e.g. after reading a CSV back).

    ``hp_*`` columns are left as they are (their type comes from their values).
    """
    import pandas as pd

    for name in frame.columns:
        if name in INT_COLUMNS:
            frame[name] = pd.to_numeric(frame[name]).astype("Int64")
        elif name in FLOAT_COLUMNS or name.startswith(METRIC_PREFIX):
            frame[name] = pd.to_numeric(frame[name]).astype("float64")
        elif name in BOOL_COLUMNS:
            frame[name] = frame[name].astype("boolean")
        elif name in TIME_COLUMNS:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif not name.startswith(HP_PREFIX):
            frame[name] = frame[name].astype("str")
    return frame
