"""hyperjoule: run training commands under many hyperparameter variations, measure energy.

Public API::

    from hyperjoule import load_runs, load_study, run_study
    result = run_study(load_study("study.yaml"), Path("results"))
    runs = load_runs("results")  # pandas DataFrame, one row per run
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import pandas as pd

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
    "load_runs",
    "load_study",
    "load_targets",
    "plan_study",
    "run_study",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def load_runs(results_dir: str | Path, study: str | None = None) -> pd.DataFrame:
    """Every recorded run as a pandas DataFrame, one row per run (``hyperjoule export --schema``).

    Same columns as ``hyperjoule export``; pandas is imported on first use only, so the CLI
    starts fast.
    """
    from hyperjoule.report import load_runs as _load_runs

    return _load_runs(Path(results_dir), study)
