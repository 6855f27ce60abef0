"""Reading the lab's result files into :class:`LegacyRun` rows, values still untyped.

Three sources describe old runs, often the same run twice:

* ``run_<session>/<experiment_id>/experiment.json`` — one run; parallel runs nest the
  measured run under ``foreground`` (``foreground_result`` in early versions) and
  describe the load under ``background`` (``background_info``);
* ``run_<session>/summary.csv`` — one row per run of a session;
* ``raw_data.csv`` — rows of many sessions, parallel rows with ``fg_``/``bg_`` columns.

Each row is one *description* of a run; :mod:`hyperjoule.legacy._identity` decides
which descriptions are the same run (by what it is, not by its id string).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperjoule.config._yaml import read_config_text
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import (
    LegacyWarning,
    bool_at,
    count_at,
    is_missing,
    normalise_timestamp,
    number_at,
    parse_number,
    read_json_object,
    text_or_none,
)

__all__ = [
    "ENERGY_KEYS",
    "POWER_KEYS",
    "LegacyRun",
    "read_csv",
    "read_experiment_json",
    "table_problem",
]

POWER_KEYS = (
    "gpu_avg_w",
    "gpu_max_w",
    "gpu_min_w",
    "gpu_temp_avg_c",
    "gpu_temp_max_c",
    "gpu_util_avg_pct",
    "gpu_util_max_pct",
)
"""Normalised names of the old power, temperature and utilisation figures."""

ENERGY_KEYS = ("gpu_j", "cpu_pkg_j", "cpu_dram_j", *POWER_KEYS)
"""Normalised names of the old energy and power figures."""

_JSON_ENERGY = {
    "gpu_energy_total_joules": "gpu_j",
    "gpu_energy_joules": "gpu_j",
    "cpu_energy_pkg_joules": "cpu_pkg_j",
    "cpu_energy_ram_joules": "cpu_dram_j",
    "gpu_power_avg_watts": "gpu_avg_w",
    "gpu_power_max_watts": "gpu_max_w",
    "gpu_power_min_watts": "gpu_min_w",
    "gpu_temp_avg_celsius": "gpu_temp_avg_c",
    "gpu_temp_max_celsius": "gpu_temp_max_c",
    "gpu_util_avg_percent": "gpu_util_avg_pct",
    "gpu_util_max_percent": "gpu_util_max_pct",
}
# Read but not stored: the CPU total is pkg + ram again; attribution is read separately.
_JSON_ENERGY_DERIVED = {"cpu_energy_total_joules", "attribution", "note"}
_CSV_ENERGY = {
    "energy_gpu_total_joules": "gpu_j",
    "energy_cpu_pkg_joules": "cpu_pkg_j",
    "energy_cpu_ram_joules": "cpu_dram_j",
    "energy_gpu_avg_watts": "gpu_avg_w",
    "energy_gpu_max_watts": "gpu_max_w",
    "energy_gpu_min_watts": "gpu_min_w",
    "energy_gpu_temp_avg_celsius": "gpu_temp_avg_c",
    "energy_gpu_temp_max_celsius": "gpu_temp_max_c",
    "energy_gpu_util_avg_percent": "gpu_util_avg_pct",
    "energy_gpu_util_max_percent": "gpu_util_max_pct",
}
_RUN_FIELDS = {
    "repository",
    "repo",
    "model",
    "hyperparameters",
    "training_success",
    "duration_seconds",
    "retries",
    "performance_metrics",
    "energy_metrics",
    "error_message",
}
_TOP_FIELDS = {"experiment_id", "timestamp", "mode"}
_NESTED = ("foreground", "foreground_result")
_BACKGROUND = ("background", "background_info")
_CSV_FIELDS = {
    "experiment_id",
    "timestamp",
    "mode",
    "repository",
    "model",
    "training_success",
    "duration_seconds",
    "retries",
    "error_message",
    "energy_cpu_total_joules",
    *_CSV_ENERGY,
}
_CSV_REQUIRED = ("experiment_id", "timestamp", "training_success")


@dataclass
class LegacyRun:
    """One old run as one file (or row) describes it (values as written, before typing).

    ``timestamp`` is the ISO form of ``timestamp_text`` (local time, as the old tool
    wrote it); ``line`` is the CSV line of the row (None for experiment.json).
    """

    legacy_id: str
    experiment_id: str
    timestamp: str
    sources: list[Path]
    timestamp_text: str = ""
    line: int | None = None
    session: str | None = None
    run_dir: Path | None = None
    repository: str | None = None
    model: str | None = None
    mode: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    success: bool | None = None
    duration_s: float | None = None
    retries: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    energy: dict[str, float | None] = field(default_factory=dict)
    attribution: str | None = None
    error: str | None = None
    background: dict[str, Any] | None = None
    nested: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The description as JSON-ready values (kept in the imported record)."""
        # Values are JSON primitives and flat dicts of them: shallow copies are enough
        # (dataclasses.asdict deep-copies and was most of the import's time).
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        for name in ("hyperparameters", "metrics", "energy"):
            data[name] = dict(data[name])
        if self.background is not None:
            data["background"] = {
                **self.background,
                "hyperparameters": dict(self.background.get("hyperparameters") or {}),
            }
        data["sources"] = [str(p) for p in self.sources]
        data["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LegacyRun:
        """Rebuild a description written by :meth:`to_dict`."""
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        values["sources"] = [Path(p) for p in data.get("sources", [])]
        if values.get("run_dir") is not None:
            values["run_dir"] = Path(values["run_dir"])
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(LegacyRun))


def _session_of(directory: Path) -> str | None:
    """The old session (``run_<date>_<time>``) a result directory belongs to, if any."""
    return directory.name if directory.name.startswith("run_") else None


def _fill_from_json(
    run: LegacyRun, body: dict[str, Any], path: Path, where: str, warnings: list[LegacyWarning]
) -> None:
    prefix = f"{where}." if where else ""
    run.repository = text_or_none(body.get("repository", body.get("repo")))
    run.model = text_or_none(body.get("model"))
    hps = body.get("hyperparameters") or {}
    if not isinstance(hps, dict):
        raise ConfigError(path, f"{prefix}hyperparameters", "expected an object of values")
    run.hyperparameters = {k: v for k, v in hps.items() if not is_missing(v)}
    run.success = bool_at(body.get("training_success"), path, f"{prefix}training_success")
    run.duration_s = number_at(body.get("duration_seconds"), path, f"{prefix}duration_seconds")
    run.retries = count_at(body.get("retries"), path, f"{prefix}retries")
    error = body.get("error_message")
    run.error = error if isinstance(error, str) and error else None
    metrics = body.get("performance_metrics") or {}
    if not isinstance(metrics, dict):
        raise ConfigError(path, f"{prefix}performance_metrics", "expected an object of numbers")
    for name, value in metrics.items():
        try:
            number = parse_number(value)
        except ValueError:
            warnings.append(
                LegacyWarning(path, f"{prefix}performance_metrics.{name}", "not a number; skipped")
            )
            continue
        if number is not None:
            run.metrics[name] = number
    energy = body.get("energy_metrics") or {}
    if not isinstance(energy, dict):
        raise ConfigError(path, f"{prefix}energy_metrics", "expected an object of figures")
    for key, value in energy.items():
        where_key = f"{prefix}energy_metrics.{key}"
        if key in _JSON_ENERGY:
            run.energy[_JSON_ENERGY[key]] = number_at(value, path, where_key)
        elif key == "attribution":
            run.attribution = text_or_none(value)
        elif key not in _JSON_ENERGY_DERIVED:
            warnings.append(LegacyWarning(path, where_key, "unknown energy figure; not imported"))
    total = number_at(energy.get("cpu_energy_total_joules"), path, f"{prefix}energy_metrics")
    _check_cpu_split(run, total, path, f"{prefix}energy_metrics.cpu_energy_total_joules", warnings)
    for key in body:
        if (
            key not in _RUN_FIELDS
            and key not in _TOP_FIELDS
            and key not in (*_NESTED, *_BACKGROUND)
        ):
            warnings.append(LegacyWarning(path, f"{prefix}{key}", "unknown key; not imported"))


def _check_cpu_split(
    run: LegacyRun, total_j: float | None, path: Path, key: str, warnings: list[LegacyWarning]
) -> None:
    """Report a CPU total that comes without its package/DRAM split (it cannot be stored)."""
    if (
        total_j is not None
        and run.energy.get("cpu_pkg_j") is None
        and run.energy.get("cpu_dram_j") is None
    ):
        warnings.append(
            LegacyWarning(
                path,
                key,
                "a CPU total without its package and DRAM parts cannot be attributed; "
                "not imported (CPU energy is recorded as unavailable)",
            )
        )


def _background(value: Any, path: Path, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, key, "expected an object describing the background load")
    hps = value.get("hyperparameters") or {}
    if not isinstance(hps, dict):
        raise ConfigError(path, f"{key}.hyperparameters", "expected an object of values")
    return {
        "repository": text_or_none(value.get("repository", value.get("repo"))),
        "model": text_or_none(value.get("model")),
        "hyperparameters": {k: v for k, v in hps.items() if not is_missing(v)},
    }


def read_experiment_json(path: Path, warnings: list[LegacyWarning]) -> LegacyRun:
    """Read one old ``experiment.json`` (sequential or parallel layout).

    Raises:
        ConfigError: The file is unreadable, not JSON, or lacks an id or timestamp.
    """
    data = read_json_object(path, "legacy experiment record")
    experiment_id = text_or_none(data.get("experiment_id"))
    if experiment_id is None:
        raise ConfigError(path, "experiment_id", "required: the old run's id")
    raw_time = text_or_none(data.get("timestamp"))
    if raw_time is None:
        raise ConfigError(path, "timestamp", "required: when the old run started")
    timestamp = normalise_timestamp(raw_time)
    run = LegacyRun(f"{experiment_id}@{timestamp}", experiment_id, timestamp, [path], raw_time)
    run.session = _session_of(path.parent.parent)
    run.run_dir = path.parent
    run.mode = text_or_none(data.get("mode"))
    nested_key = next((k for k in _NESTED if k in data), None)
    if nested_key is not None:
        body = data[nested_key]
        if not isinstance(body, dict):
            raise ConfigError(path, nested_key, "expected the foreground run's object")
        run.nested = True
        _fill_from_json(run, body, path, nested_key, warnings)
        for key in data:
            if key not in _TOP_FIELDS and key not in (*_NESTED, *_BACKGROUND):
                warnings.append(LegacyWarning(path, key, "unknown key; not imported"))
    else:
        _fill_from_json(run, data, path, "", warnings)
    bg_key = next((k for k in _BACKGROUND if k in data), None)
    if bg_key is not None:
        run.background = _background(data[bg_key], path, bg_key)
    return run


def _cell(row: dict[str, str], column: str) -> str | None:
    """A cell, falling back to the ``fg_`` column that parallel rows of raw_data.csv use."""
    value = text_or_none(row.get(column))
    return value if value is not None else text_or_none(row.get("fg_" + column))


def _prefixed(row: dict[str, str], prefix: str, *, fg: bool = True) -> dict[str, str]:
    out: dict[str, str] = {}
    prefixes = (prefix, "fg_" + prefix) if fg else (prefix,)
    for column, value in row.items():
        for p in prefixes:
            if column and column.startswith(p) and not is_missing(value):
                out.setdefault(column[len(p) :], value.strip())
    return out


def _row_run(
    row: dict[str, str], path: Path, line: int, warnings: list[LegacyWarning]
) -> LegacyRun:
    experiment_id = text_or_none(row.get("experiment_id"))
    if experiment_id is None:
        raise ConfigError(path, "experiment_id", "empty cell; every row needs its id", line=line)
    raw_time = text_or_none(row.get("timestamp"))
    if raw_time is None:
        raise ConfigError(path, "timestamp", "empty cell; every row needs its timestamp", line=line)
    timestamp = normalise_timestamp(raw_time)
    run = LegacyRun(
        f"{experiment_id}@{timestamp}", experiment_id, timestamp, [path], raw_time, line
    )
    run.session = _session_of(path.parent) or text_or_none(row.get("experiment_source"))
    run.repository = _cell(row, "repository")
    run.model = _cell(row, "model")
    run.mode = text_or_none(row.get("mode"))
    run.success = bool_at(_cell(row, "training_success"), path, "training_success", line)
    run.duration_s = number_at(_cell(row, "duration_seconds"), path, "duration_seconds", line)
    run.retries = count_at(_cell(row, "retries"), path, "retries", line)
    run.error = _cell(row, "error_message")
    run.hyperparameters = _prefixed(row, "hyperparam_")
    for name, value in _prefixed(row, "perf_").items():
        try:
            number = parse_number(value)
        except ValueError:
            warnings.append(LegacyWarning(path, f"perf_{name}", "not a number; skipped"))
            continue
        if number is not None:
            run.metrics[name] = number
    for column, key in _CSV_ENERGY.items():
        run.energy[key] = number_at(_cell(row, column), path, column, line)
    total = number_at(_cell(row, "energy_cpu_total_joules"), path, "energy_cpu_total_joules", line)
    _check_cpu_split(run, total, path, "energy_cpu_total_joules", warnings)
    bg_repo = text_or_none(row.get("bg_repository"))
    if bg_repo is not None:
        run.background = {
            "repository": bg_repo,
            "model": text_or_none(row.get("bg_model")),
            "hyperparameters": _prefixed(row, "bg_hyperparam_", fg=False),
        }
    return run


def _known_column(column: str) -> bool:
    name = column.removeprefix("fg_")
    if name in _CSV_FIELDS or name.startswith(("hyperparam_", "perf_")):
        return True
    return column in ("bg_repository", "bg_model", "experiment_source") or column.startswith(
        "bg_hyperparam_"
    )


def table_problem(path: Path) -> str | None:
    """Why a CSV found in a result tree is not a lab results table; None when it is one."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return f"unreadable ({e})"
    missing = _missing_columns(header)
    if missing:
        return f"not a results table (no {', '.join(missing)} column)"
    return None


def _missing_columns(header: list[str]) -> list[str]:
    """The columns every lab results table has that ``header`` lacks."""
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if "repository" not in header and "fg_repository" not in header:
        missing.append("repository")
    return missing


def read_csv(path: Path, warnings: list[LegacyWarning]) -> list[LegacyRun]:
    """Read an old ``summary.csv`` or ``raw_data.csv``, one :class:`LegacyRun` per row.

    Raises:
        ConfigError: The file is unreadable, lacks the expected columns, or a cell that
            must hold a number or a boolean does not.
    """
    text = read_config_text(Path(path), "legacy results file").removeprefix("\ufeff")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        rows = list(reader)
    except csv.Error as e:
        raise ConfigError(path, "", f"cannot read legacy results: {e}") from None
    missing = _missing_columns(header)
    if missing:
        raise ConfigError(
            path,
            missing[0],
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            "expected a summary.csv or raw_data.csv of the lab workflow",
        )
    for column in header:
        if not _known_column(column):
            warnings.append(LegacyWarning(path, column, "unknown column; not imported"))
    runs = []
    for index, row in enumerate(rows):
        if all(is_missing(v) for k, v in row.items() if k is not None):
            continue  # a blank line
        runs.append(_row_run(row, path, index + 2, warnings))
    return runs
