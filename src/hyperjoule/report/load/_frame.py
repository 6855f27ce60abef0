"""``load_runs``: the runs of a results directory as one flat, typed table.

The schema (columns, order, types, units) is in :mod:`._schema` and
``hyperjoule/docs/export-schema.md``. Values are gathered column by column and each column is typed
once (no per-row pandas work), so 100,000 runs load in seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperjoule._text import encodable, safe_text
from hyperjoule.metrics._bounds import MAX_METRICS, MAX_NAME_CHARS
from hyperjoule.records import ENERGY_COMPONENTS
from hyperjoule.report.load._extract import (
    ATTEMPT_FIELDS,
    RECORD_PATHS,
    check_study,
    from_database,
    from_records,
    no_gc,
)
from hyperjoule.report.load._goals import MetricGoals
from hyperjoule.report.load._schema import (
    ATTEMPT_COLUMNS,
    BACKGROUND_COLUMNS,
    BOOL_COLUMNS,
    CARBON_COLUMNS,
    FLOAT_COLUMNS,
    HP_PREFIX,
    INT_COLUMNS,
    LEADING_COLUMNS,
    METRIC_PREFIX,
    POWER_COLUMNS,
    TIME_COLUMNS,
    TRAILING_COLUMNS,
    apply_schema_dtypes,
    hp_columns,
    metric_columns,
    ordered_columns,
    typed_hp_series,
)
from hyperjoule.storage import RunFilter, count_stored_runs

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pandas as pd

    from hyperjoule.report._pool import FigurePool

__all__ = [
    "ATTEMPT_COLUMNS",
    "HP_PREFIX",
    "LEADING_COLUMNS",
    "METRIC_PREFIX",
    "TRAILING_COLUMNS",
    "RunTables",
    "apply_schema_dtypes",
    "count_runs",
    "hp_columns",
    "load_attempts",
    "load_part",
    "load_runs",
    "load_tables",
    "metric_columns",
    "runs_frame",
    "typed_hp_series",
]

logger = logging.getLogger(__name__)


@dataclass
class RunTables:
    """The runs of a results directory as tables (see ``hyperjoule/docs/export-schema.md``).

    Attributes:
        runs: One row per run, the flat export schema.
        attempts: One row per attempt of every run (:data:`ATTEMPT_COLUMNS`).
        database: The database file they were read from (empty path: not from a file).
        goals: The metric goals the runs' targets declared (others are guessed).
    """

    runs: pd.DataFrame
    attempts: pd.DataFrame
    database: Path
    goals: MetricGoals = field(default_factory=MetricGoals)


def _background(block: Any) -> tuple[Any, Any, Any, Any]:
    """Flatten the parallel-mode ``background`` block (target, model, effective, runs)."""
    if not isinstance(block, Mapping):
        return None, None, None, None
    runs = block.get("runs")
    # The block holds either a count or the list of background runs (with their details).
    if isinstance(runs, Mapping):
        runs = runs.get("count")
    elif isinstance(runs, list):
        runs = len(runs)
    effective = block.get("effective")
    return (
        block.get("target"),
        block.get("model"),
        effective if isinstance(effective, bool) else None,
        runs if isinstance(runs, int) and not isinstance(runs, bool) else None,
    )


def _joined(items: Any) -> str | None:
    if not isinstance(items, list) or not items:
        return None
    try:
        return ";".join(items)
    except TypeError:  # not all text: written by hand or by another tool
        return ";".join(str(i) for i in items)


def _typed(name: str, values: list[Any]) -> Any:
    """One column as a typed array (schema columns) or Series (hyperparameters)."""
    import numpy as np
    import pandas as pd

    if name.startswith(HP_PREFIX):
        return typed_hp_series(values, name).array
    if name in FLOAT_COLUMNS or name.startswith(METRIC_PREFIX) or name in INT_COLUMNS:
        nan = math.nan
        try:
            floats = np.array([nan if v is None else v for v in values], dtype=np.float64)
        except (TypeError, ValueError):  # a damaged record: keep what is numeric
            floats = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        if name not in INT_COLUMNS:
            return floats
        missing = np.isnan(floats)
        return pd.arrays.IntegerArray(np.where(missing, 0, floats).astype(np.int64), missing)
    if name in BOOL_COLUMNS:
        return pd.array(values, dtype="boolean")
    if name in TIME_COLUMNS:
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601").array
    if name in _UNIQUE_TEXT:
        # Messages recorded before target output was checked may hold lone surrogates.
        return pd.array([encodable(v) if isinstance(v, str) else v for v in values], dtype="str")
    return _strings(values)


_UNIQUE_TEXT = frozenset({"run_id", "slot_id", "error", "run_dir"})


def _strings(values: list[Any]) -> Any:
    """A text column, built from its distinct values (most columns repeat a few)."""
    import numpy as np
    import pandas as pd

    # Converting each distinct value once and repeating it by index is several times
    # faster than converting 100,000 Python strings one by one.
    distinct: dict[Any, int] = {}
    codes = np.fromiter(
        (-1 if v is None else distinct.setdefault(v, len(distinct)) for v in values),
        dtype=np.int64,
        count=len(values),
    )
    levels = pd.array([encodable(str(v)) for v in distinct], dtype="str")
    return levels.take(codes, allow_fill=True)


def _bounded_metrics(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    return {safe_text(str(k), MAX_NAME_CHARS): v for k, v in islice(raw.items(), MAX_METRICS)}


def _run_columns(rows: list[list[Any]]) -> dict[str, list[Any]]:
    """The schema's run columns (attempt totals aside) as plain lists."""
    index = {p: i for i, p in enumerate(RECORD_PATHS)}
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in RECORD_PATHS]

    def col(path: str) -> list[Any]:
        return list(cols[index[path]])

    data: dict[str, list[Any]] = {name: col(f"$.{name}") for name in LEADING_COLUMNS}
    data["mutated"] = [_joined(m) for m in data["mutated"]]
    hps = [h if isinstance(h, Mapping) else {} for h in col("$.hyperparameters")]
    # Records written before names were checked may hold thousands of names or
    # unencodable ones: the table takes the first MAX_METRICS of each, made printable.
    metrics = [_bounded_metrics(m) for m in col("$.metrics")]
    for name in sorted({k for h in hps for k in h}):
        data[HP_PREFIX + name] = [h.get(name) for h in hps]
    for name in sorted({k for m in metrics for k in m}):
        data[METRIC_PREFIX + name] = [m.get(name) for m in metrics]
    combined = [False] * len(rows)
    apportioned = [False] * len(rows)
    for c in ENERGY_COMPONENTS:
        prefix = f"$.energy.components.{c}."
        energy = col(prefix + "energy_j")
        data[f"energy_{c}_j"] = energy
        data[f"energy_{c}_net_j"] = col(prefix + "net_energy_j")
        data[f"energy_{c}_method"] = [m or "unavailable" for m in col(prefix + "method")]
        # An attribution only means something for a measured figure.
        attribution = [
            a if e is not None else None
            for a, e in zip(col(prefix + "attribution"), energy, strict=True)
        ]
        data[f"energy_{c}_attribution"] = attribution
        combined = [x or a == "combined" for x, a in zip(combined, attribution, strict=True)]
        apportioned = [
            x or a == "apportioned" for x, a in zip(apportioned, attribution, strict=True)
        ]
        data[f"energy_{c}_share"] = col(prefix + "share")
        data[f"energy_{c}_devices"] = [_joined(d) for d in col(prefix + "devices")]
        data[f"energy_{c}_reason"] = col(prefix + "reason")
    total = col("$.energy.total_j")
    data["energy_total_j"] = total
    data["energy_total_method"] = [m or "unavailable" for m in col("$.energy.total_method")]
    data["energy_total_attribution"] = [
        None if t is None else "combined" if x else "apportioned" if y else "exclusive"
        for t, x, y in zip(total, combined, apportioned, strict=True)
    ]
    for name in POWER_COLUMNS:
        data[name] = col(f"$.power.{name.removeprefix('power_')}")
    background = [_background(b) for b in col("$.background")]
    for k, name in enumerate(BACKGROUND_COLUMNS):
        data[name] = [b[k] for b in background]
    data["error"] = col("$.error")
    data["run_dir"] = col("$.run_dir")
    for name in CARBON_COLUMNS:
        data[name] = col(f"$.carbon.{name.removeprefix('carbon_')}")
    return data


def _attempt_frame(runs: dict[str, list[Any]], attempt_rows: list[list[list[Any]]]) -> pd.DataFrame:
    import pandas as pd

    data: dict[str, list[Any]] = {c: [] for c in ATTEMPT_COLUMNS}
    counts = [len(a) for a in attempt_rows]
    for name, source in (
        ("run_id", "run_id"),
        ("study", "study"),
        ("target", "target"),
        ("model", "model"),
        ("mode", "mode"),
        ("run_status", "status"),
    ):
        data[name] = [v for v, n in zip(runs[source], counts, strict=True) for _ in range(n)]
    flat = [entry for entries in attempt_rows for entry in entries]
    cols = list(zip(*flat, strict=True)) if flat else [() for _ in ATTEMPT_FIELDS]
    for name, values in zip(ATTEMPT_FIELDS, cols, strict=True):
        data[name] = list(values)
    frame: pd.DataFrame = pd.DataFrame({name: _typed(name, data[name]) for name in ATTEMPT_COLUMNS})
    return frame


def _tables(rows: list[list[Any]], attempt_rows: list[list[list[Any]]]) -> RunTables:
    """Build both tables from extracted values."""
    import pandas as pd

    index = {p: i for i, p in enumerate(RECORD_PATHS)}
    goals = MetricGoals.from_records(
        (r[index["$.target"]] for r in rows), [r[index["$.metric_goals"]] for r in rows]
    )
    with no_gc():
        columns = _run_columns(rows)
        attempts = _attempt_frame(columns, attempt_rows)
        frame = pd.DataFrame({name: _typed(name, values) for name, values in columns.items()})
    # Attempt totals: every attempt of a run, failures and retries included.
    by_run = attempts.assign(missing=attempts["energy_total_j"].isna().astype("int64")).groupby(
        "run_id", sort=False
    )
    order = frame["run_id"]
    frame["attempts_duration_s"] = by_run["duration_s"].sum().reindex(order).to_numpy()
    # The sum of the measured attempts; attempts_energy_missing counts the others.
    frame["attempts_energy_total_j"] = (
        by_run["energy_total_j"].sum(min_count=1).reindex(order).to_numpy()
    )
    missing = by_run["missing"].sum().reindex(order).fillna(0).to_numpy()
    frame["attempts_energy_missing"] = pd.array(missing.astype("int64"), dtype="Int64")
    return RunTables(
        runs=frame[ordered_columns(frame.columns)],
        attempts=attempts,
        database=Path(),
        goals=goals,
    )


def runs_frame(records: Iterable[Mapping[str, Any]]) -> RunTables:
    """Flatten run records (``RunRecord.to_dict()`` dicts) into the run and attempt tables."""
    return _tables(*from_records(list(records)))


def count_runs(results_dir: Path | str, study: str | None = None) -> int:
    """How many runs (of ``study``) the database holds; 0 when it cannot be read."""
    return count_stored_runs(results_dir, study)


def load_part(
    path: str, study: str | None, part: int, parts: int, runs: RunFilter | None = None
) -> RunTables:
    """Read one part of the runs (row id modulo ``parts``); a job for report workers."""
    return _tables(*from_database(Path(path), study, part, parts, runs))


def _merge(parts: list[RunTables]) -> RunTables:
    """Join tables read in parts, in the order a single read gives (oldest first)."""
    import pandas as pd

    runs = pd.concat([p.runs for p in parts], ignore_index=True)
    for name in hp_columns(runs.columns):
        kinds = {str(p.runs[name].dtype) for p in parts if name in p.runs.columns}
        if len(kinds) > 1 or not all(name in p.runs.columns for p in parts):
            # Parts disagree on the type (or lack the column): type it from all values.
            values = [None if pd.isna(v) else v for v in runs[name].tolist()]
            runs[name] = typed_hp_series(values, name).array
    order = runs.sort_values(["started_at", "run_id"], na_position="first", kind="stable").index
    runs = runs.loc[order].reset_index(drop=True)
    attempts = pd.concat([p.attempts for p in parts], ignore_index=True)
    position = pd.Series(range(len(runs)), index=runs["run_id"].to_numpy())
    attempts = attempts.iloc[
        attempts.assign(_pos=attempts["run_id"].map(position).to_numpy())
        .sort_values(["_pos", "attempt"], kind="stable")
        .index
    ].reset_index(drop=True)
    goals = MetricGoals()
    for part in parts:
        goals = goals.merged(part.goals)
    return RunTables(
        runs=runs[ordered_columns(runs.columns)], attempts=attempts, database=Path(), goals=goals
    )


def load_tables(
    results_dir: Path | str,
    study: str | None = None,
    *,
    pool: FigurePool | None = None,
    runs: RunFilter | None = None,
) -> RunTables:
    """Read the runs (and their attempts) of a results directory, oldest first.

    Args:
        results_dir: The results directory.
        study: Only runs of this study; None: every study.
        pool: Worker processes to share the reading with (a third each with two).
        runs: Only the runs this filter keeps (filtered in SQL; may leave none).

    Raises:
        StorageError: No database, no runs, or no runs of ``study``.
    """
    from hyperjoule.storage import DB_FILENAME, ResultsStore

    # Opening the store validates (and migrates) the database and fails clearly if missing.
    ResultsStore(Path(results_dir), create=False).close()
    path = Path(results_dir) / DB_FILENAME
    check_study(path, study)
    if pool is None or pool.workers == 0:
        tables = _tables(*from_database(path, study, runs=runs))
    else:
        parts = pool.workers + 1
        futures = [
            pool.run(load_part, path=str(path), study=study, part=k, parts=parts, runs=runs)
            for k in range(1, parts)
        ]
        mine = load_part(str(path), study, 0, parts, runs)
        tables = _merge(
            [
                mine,
                *(
                    _part_result(f, path, study, k, parts, runs)
                    for k, f in enumerate(futures, start=1)
                ),
            ]
        )
    tables.database = path
    logger.debug("%s: loaded %d runs", path, len(tables.runs))
    return tables


def _part_result(
    future: Future[Any],
    path: Path,
    study: str | None,
    part: int,
    parts: int,
    runs: RunFilter | None = None,
) -> RunTables:
    from hyperjoule.report._pool import WorkerError

    try:
        result: RunTables = future.result()
    except WorkerError as e:
        logger.warning("%s; reading that part in this process", e)
        return load_part(str(path), study, part, parts, runs)
    return result


def load_runs(results_dir: Path | str, study: str | None = None) -> pd.DataFrame:
    """Return the runs of a results directory as a DataFrame, one row per run.

    The columns are those of ``hyperjoule export`` (see ``hyperjoule/docs/export-schema.md``).

    Args:
        results_dir: The results directory (holds ``hyperjoule.db``).
        study: Only runs of this study; None: every study.

    Raises:
        StorageError: No database, no runs, or no runs of ``study`` (names the known ones).
    """
    return load_tables(results_dir, study).runs


def load_attempts(results_dir: Path | str, study: str | None = None) -> pd.DataFrame:
    """Return every attempt of every run (retries included), one row per attempt.

    Raises:
        StorageError: No database, no runs, or no runs of ``study``.
    """
    return load_tables(results_dir, study).attempts
