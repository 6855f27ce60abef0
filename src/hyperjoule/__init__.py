"""hyperjoule: run training commands under many hyperparameter variations, measure energy.

Public API::

    from hyperjoule import load_study, run_study
    result = run_study(load_study("study.yaml"), Path("results"))
"""

import logging

from hyperjoule.config import LoadedStudy, load_study, load_targets
from hyperjoule.errors import (
    ConfigError,
    HyperjouleError,
    MeterError,
    PlanError,
    PreflightError,
    StorageError,
)
from hyperjoule.execution import StudyResult, run_study
from hyperjoule.planning import plan_study
from hyperjoule.records import RunRecord, RunSpec, RunStatus

__all__ = [
    "ConfigError",
    "HyperjouleError",
    "LoadedStudy",
    "MeterError",
    "PlanError",
    "PreflightError",
    "RunRecord",
    "RunSpec",
    "RunStatus",
    "StorageError",
    "StudyResult",
    "load_study",
    "load_targets",
    "plan_study",
    "run_study",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
