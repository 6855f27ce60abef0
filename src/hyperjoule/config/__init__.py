"""Targets and study files: strict schemas, loading, typed values.

Unknown keys are errors (the lab workflow silently ignored ``mutate_params`` and ran 108
of 370 planned runs); every message names the file, line and field.
"""

from hyperjoule.config._fingerprint import TargetFingerprint, target_fingerprint
from hyperjoule.config._load import (
    LoadedStudy,
    load_study,
    load_targets,
    placeholder_values,
    resolve_command,
    resolve_env,
)
from hyperjoule.config._placeholders import PLACEHOLDERS
from hyperjoule.config._search import Objective, declared_metrics, resolve_objectives
from hyperjoule.config._study import (
    SEARCH_FIGURES,
    BackgroundConfig,
    CarbonConfig,
    DefaultExperiment,
    Defaults,
    ExecutorConfig,
    Experiment,
    ForegroundConfig,
    IdleCooldown,
    MutationExperiment,
    ParallelExperiment,
    PruneConfig,
    SearchExperiment,
    StudyFile,
    SystemSettings,
    parse_constraint,
)
from hyperjoule.config._targets import (
    OFFLINE_ENV,
    SYSTEM_KNOBS,
    Hyperparameter,
    MetricSpec,
    Target,
    TargetsFile,
)
from hyperjoule.config._values import canonical_key, coerce_value, format_value

__all__ = [
    "OFFLINE_ENV",
    "PLACEHOLDERS",
    "SEARCH_FIGURES",
    "SYSTEM_KNOBS",
    "Objective",
    "PruneConfig",
    "SearchExperiment",
    "declared_metrics",
    "parse_constraint",
    "resolve_objectives",
    "BackgroundConfig",
    "DefaultExperiment",
    "Defaults",
    "Experiment",
    "ForegroundConfig",
    "IdleCooldown",
    "Hyperparameter",
    "LoadedStudy",
    "MetricSpec",
    "MutationExperiment",
    "ParallelExperiment",
    "CarbonConfig",
    "ExecutorConfig",
    "StudyFile",
    "SystemSettings",
    "Target",
    "TargetFingerprint",
    "TargetsFile",
    "canonical_key",
    "coerce_value",
    "format_value",
    "load_study",
    "load_targets",
    "placeholder_values",
    "resolve_command",
    "resolve_env",
    "target_fingerprint",
]
