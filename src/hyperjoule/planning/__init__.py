"""Planning: distributions, canonical dedup keys and the expansion of a study into runs."""

from hyperjoule.planning._distributions import sample_value, space_size
from hyperjoule.planning._plan import MeasuredKeys, plan_study, resolve_hyperparameters

__all__ = ["MeasuredKeys", "plan_study", "resolve_hyperparameters", "sample_value", "space_size"]
