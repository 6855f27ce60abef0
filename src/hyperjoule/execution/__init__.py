"""Execution: run tasks, the pure attempt executor, executors, and the study loop.

The coordinator (:func:`run_study`) turns each planned run into a self-contained
:class:`RunTask` per attempt and submits it to an :class:`Executor`
(:class:`LocalExecutor`, or Ray); every executor runs :func:`execute` on its node and
returns an :class:`AttemptResult`; the coordinator's recorder writes the records.
"""

from hyperjoule.execution._attempt import attempt_environ, execute, run_files
from hyperjoule.execution._build import TaskBuilder, build_argv
from hyperjoule.execution._coordinator import RunObserver
from hyperjoule.execution._executor import Executor
from hyperjoule.execution._guards import check_assets
from hyperjoule.execution._lifecycle import parse_rerun
from hyperjoule.execution._local import LocalExecutor, default_jobs
from hyperjoule.execution._outcome import classify_outcome
from hyperjoule.execution._plan_state import PlanState, SearchProgress, load_plan_state
from hyperjoule.execution._process import ProcessResult, kill_process_group, run_process
from hyperjoule.execution._result import AttemptResult, BackgroundReport, ExecutorInfo
from hyperjoule.execution._runner import StudyResult, run_study
from hyperjoule.execution._task import BackgroundTask, CooldownPolicy, MetricRule, RunTask
from hyperjoule.execution._tracking import GroupTracker, NoTracker

__all__ = [
    "AttemptResult",
    "BackgroundReport",
    "BackgroundTask",
    "CooldownPolicy",
    "Executor",
    "ExecutorInfo",
    "GroupTracker",
    "LocalExecutor",
    "MetricRule",
    "NoTracker",
    "PlanState",
    "ProcessResult",
    "RunObserver",
    "RunTask",
    "SearchProgress",
    "StudyResult",
    "TaskBuilder",
    "attempt_environ",
    "build_argv",
    "check_assets",
    "classify_outcome",
    "default_jobs",
    "execute",
    "kill_process_group",
    "load_plan_state",
    "run_files",
    "parse_rerun",
    "run_process",
    "run_study",
]
