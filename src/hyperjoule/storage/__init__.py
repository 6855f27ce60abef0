"""Recording runs: the SQLite results database, run directories and ``summary.csv``.

The database (``<results_dir>/hyperjoule.db``) is the source of truth; each run also gets
a directory ``<results_dir>/<study>/<session>/<run_id>/`` with its full ``run.json``, and
each session a ``summary.csv`` appended after every run::

    results/
      hyperjoule.db
      <study>/<session>/summary.csv
      <study>/<session>/<run_id>/run.json
"""

from __future__ import annotations

from hyperjoule.storage._checkpoint import AttemptCheckpoint
from hyperjoule.storage._db import ResultsStore
from hyperjoule.storage._filter import RunFilter
from hyperjoule.storage._layout import (
    RUN_JSON,
    new_run_id,
    new_session_id,
    path_component,
    read_run_json,
    run_dir,
    session_dir,
    utc_timestamp,
    write_run_json,
)
from hyperjoule.storage._lock import LOCK_FILENAME, StudyBusyError, StudyLock
from hyperjoule.storage._protect import refuse_results_file
from hyperjoule.storage._query import (
    RecordValues,
    attempt_values,
    count_stored_runs,
    no_gc,
    read_record_values,
    stored_studies,
)
from hyperjoule.storage._schema import DB_FILENAME, MIGRATIONS, SCHEMA_VERSION
from hyperjoule.storage._summary import (
    ENERGY_COLUMNS,
    OUR_COLUMNS,
    SUMMARY_BASE_COLUMNS,
    SUMMARY_LEADING_COLUMNS,
    SummaryCsv,
    flat_row,
    summary_columns,
)

__all__ = [
    "refuse_results_file",
    "DB_FILENAME",
    "ENERGY_COLUMNS",
    "SUMMARY_LEADING_COLUMNS",
    "LOCK_FILENAME",
    "MIGRATIONS",
    "OUR_COLUMNS",
    "RUN_JSON",
    "SCHEMA_VERSION",
    "SUMMARY_BASE_COLUMNS",
    "AttemptCheckpoint",
    "RecordValues",
    "ResultsStore",
    "RunFilter",
    "StudyBusyError",
    "StudyLock",
    "SummaryCsv",
    "attempt_values",
    "count_stored_runs",
    "flat_row",
    "no_gc",
    "read_record_values",
    "stored_studies",
    "new_run_id",
    "new_session_id",
    "path_component",
    "read_run_json",
    "run_dir",
    "session_dir",
    "summary_columns",
    "utc_timestamp",
    "write_run_json",
]
