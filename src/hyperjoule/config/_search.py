"""Cross-checks of search experiments: objectives, constraints and pruning against the target.

Objective and constraint names are either measured figures (:data:`SEARCH_FIGURES`) or
metrics the target declares (in ``metrics`` or ``required_metrics``). Directions come from
the experiment (``{name: minimize}``), else from the metric's declared ``goal``; energy
and time are always minimised.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperjoule.config._study import SEARCH_FIGURES, SearchExperiment
from hyperjoule.config._targets import Target

__all__ = ["Objective", "declared_metrics", "resolve_objectives", "search_problem"]


@dataclass(frozen=True)
class Objective:
    """One figure a search optimises.

    Attributes:
        name: A metric name or one of :data:`SEARCH_FIGURES`.
        maximize: True when higher is better.
    """

    name: str
    maximize: bool

    @property
    def direction(self) -> str:
        """Optuna's word for the direction."""
        return "maximize" if self.maximize else "minimize"


def declared_metrics(target: Target) -> list[str]:
    """Metrics a target declares: regex fallbacks, goals and required metrics."""
    names = list(target.metrics)
    return names + [m for m in target.required_metrics if m not in names]


def _metric_goal(target: Target, name: str) -> str | None:
    spec = target.metrics.get(name)
    return spec.goal if spec is not None else None


def resolve_objectives(exp: SearchExperiment, target: Target) -> list[Objective]:
    """The experiment's objectives with their directions.

    Raises:
        ValueError: A name is neither a figure nor a declared metric, or a metric has
            no direction (one line saying how to fix it; the loader adds file and line).
    """
    items = (
        list(exp.objectives.items())
        if isinstance(exp.objectives, dict)
        else [(n, None) for n in exp.objectives]
    )
    out = []
    for name, declared in items:
        direction: str | None = declared
        problem = search_problem(name, target)
        if problem:
            raise ValueError(f"objective {problem}")
        if direction is None:
            direction = "minimize" if name in SEARCH_FIGURES else _metric_goal(target, name)
        if direction is None:
            raise ValueError(
                f"objective '{name}' has no direction; write objectives: {{{name}: maximize}} "
                f"(or minimize), or declare 'goal:' on the metric in the target"
            )
        out.append(Objective(name, direction == "maximize"))
    return out


def search_problem(name: str, target: Target) -> str | None:
    """Why ``name`` cannot be optimised or constrained on ``target`` (None when it can)."""
    if name in SEARCH_FIGURES:
        return None
    known = declared_metrics(target)
    if name in known:
        return None
    return (
        f"'{name}' is neither a measured figure ({', '.join(SEARCH_FIGURES)}) nor a metric "
        f"the target declares ({', '.join(known) or 'none'}); declare it under 'metrics' "
        "or 'required_metrics' of the target, or fix the name"
    )
