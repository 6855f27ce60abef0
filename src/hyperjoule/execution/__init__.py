"""Execution: launching runs in their own process groups, classifying and recording them."""

from hyperjoule.execution._guards import check_assets
from hyperjoule.execution._outcome import classify_outcome
from hyperjoule.execution._plan_state import PlanState, load_plan_state
from hyperjoule.execution._process import ProcessResult, kill_process_group, run_process
from hyperjoule.execution._runner import StudyResult, run_study
from hyperjoule.execution._session import RunObserver, build_argv

__all__ = [
    "PlanState",
    "ProcessResult",
    "RunObserver",
    "StudyResult",
    "build_argv",
    "check_assets",
    "classify_outcome",
    "kill_process_group",
    "load_plan_state",
    "run_process",
    "run_study",
]
