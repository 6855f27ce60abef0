"""Planning: distributions, canonical dedup keys, plan expansion and search proposals."""

from hyperjoule.planning._distributions import sample_value, space_size
from hyperjoule.planning._front import (
    describe_front,
    feasible_points,
    hypervolume,
    hypervolume_curve,
    non_dominated,
    reference_point,
)
from hyperjoule.planning._objectives import TrialScore, figure_value, score_record
from hyperjoule.planning._plan import MeasuredKeys, plan_study, resolve_hyperparameters
from hyperjoule.planning._search import SearchProposer
from hyperjoule.planning._search_setup import SearchSetup, search_setups, trial_number
from hyperjoule.planning._search_space import SearchSpace

__all__ = [
    "MeasuredKeys",
    "SearchProposer",
    "SearchSetup",
    "SearchSpace",
    "TrialScore",
    "describe_front",
    "feasible_points",
    "figure_value",
    "hypervolume",
    "hypervolume_curve",
    "non_dominated",
    "plan_study",
    "reference_point",
    "resolve_hyperparameters",
    "sample_value",
    "score_record",
    "search_setups",
    "space_size",
    "trial_number",
]
