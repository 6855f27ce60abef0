"""Analysis of recorded runs: flat tables, Pareto fronts, sensitivity, exports, HTML report.

For notebooks::

    from hyperjoule.report import load_runs, pareto_table, sensitivity
    runs = load_runs("results", study="quickstart")        # one row per run
    cnn = runs[(runs.target == "digits-cnn") & (runs.status == "succeeded")]
    sensitivity(cnn, "energy_total_j").table                # hyperparameters ranked
    pareto_table(cnn, "metric_test_accuracy")               # non-dominated runs

The flat schema (columns, units, types) is documented in ``hyperjoule/docs/export-schema.md``.
pandas and matplotlib are imported only when a function needs them.
"""

from __future__ import annotations

from hyperjoule.report.analysis._parallel import ParallelComparison, parallel_vs_isolated
from hyperjoule.report.analysis._pareto import metric_direction, pareto_front, pareto_table
from hyperjoule.report.analysis._sensitivity import SensitivityResult, sensitivity
from hyperjoule.report.analysis._stats import Interval, mean_ci, spearman_ci
from hyperjoule.report.analysis._summary import ReportError, StudyCost, group_summary, study_cost
from hyperjoule.report.analysis._target import (
    TargetMetric,
    auto_target_metric,
    energy_to_target,
    parse_target_metric,
)
from hyperjoule.report.load._frame import (
    ATTEMPT_COLUMNS,
    HP_PREFIX,
    LEADING_COLUMNS,
    METRIC_PREFIX,
    TRAILING_COLUMNS,
    RunTables,
    load_attempts,
    load_runs,
    load_tables,
    runs_frame,
)
from hyperjoule.report.load._timeline import Timeline, find_timeline, read_timeline
from hyperjoule.report.render._export import (
    EXPORT_FORMATS,
    STREAM_FORMATS,
    export_runs,
    read_export,
    write_runs,
    write_runs_stream,
)
from hyperjoule.report.render._report import ReportInfo, render_report, write_report

__all__ = [
    "ATTEMPT_COLUMNS",
    "EXPORT_FORMATS",
    "HP_PREFIX",
    "LEADING_COLUMNS",
    "METRIC_PREFIX",
    "TRAILING_COLUMNS",
    "Interval",
    "ParallelComparison",
    "STREAM_FORMATS",
    "ReportError",
    "ReportInfo",
    "RunTables",
    "SensitivityResult",
    "StudyCost",
    "TargetMetric",
    "Timeline",
    "auto_target_metric",
    "energy_to_target",
    "export_runs",
    "find_timeline",
    "group_summary",
    "load_attempts",
    "load_runs",
    "load_tables",
    "mean_ci",
    "metric_direction",
    "parallel_vs_isolated",
    "pareto_front",
    "pareto_table",
    "parse_target_metric",
    "read_export",
    "read_timeline",
    "render_report",
    "runs_frame",
    "sensitivity",
    "spearman_ci",
    "study_cost",
    "write_report",
    "write_runs",
    "write_runs_stream",
]
