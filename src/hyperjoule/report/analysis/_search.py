"""What each search found: its front over the declared objectives, and how fast it got there.

For every search experiment recorded (``mode: search``), the front is taken over the
trials that succeeded and met the constraints, in the search's own objectives and
directions. The hypervolume after each trial shows how fast the front grew. When
random-mutation runs of the same target and model exist (any study), they are scored
with the same objectives and constraints and their hypervolume after as many runs is
shown beside it; both are measured against one shared box (each objective scaled to
[0, 1] between the best and just past the worst point of either), so the two numbers
compare. Every joule spent counts, pruned and failed trials included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperjoule.config import Objective, parse_constraint
from hyperjoule.planning import (
    feasible_points,
    hypervolume_curve,
    non_dominated,
    reference_point,
    score_record,
    trial_number,
)
from hyperjoule.records import RunRecord, RunStatus

__all__ = ["SearchFront", "search_fronts"]


@dataclass
class SearchFront:
    """One search experiment's outcome.

    Attributes:
        study: Study name.
        experiment: Index of the search experiment in the study file.
        target: Target name.
        model: Model name or None.
        sampler: Sampler used.
        objectives: The objectives with directions.
        constraints: ``{name: "op bound"}`` as written.
        trials: Finished trials (pruned and failed included).
        statuses: Trials per status.
        energy_j: Energy of every trial (every attempt), in joules.
        estimated: True when some objective figure on the front is only an estimate.
        front: One dict per trial on the front (run_id, trial, values, methods,
            hyperparameters), ordered by the first objective.
        hypervolume: Normalised hypervolume after each trial (see the module doc).
        random: The random-mutation comparison, or None when no such runs exist:
            ``{"runs", "studies", "hypervolume" (curve), "energy_j"}``.
    """

    study: str
    experiment: int
    target: str
    model: str | None
    sampler: str
    objectives: list[Objective]
    constraints: dict[str, str]
    trials: int
    statuses: dict[str, int]
    energy_j: float | None
    estimated: bool
    front: list[dict[str, Any]] = field(default_factory=list)
    hypervolume: list[float] = field(default_factory=list)
    random: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``hyperjoule pareto --search --format json``)."""
        return {
            "study": self.study,
            "experiment": self.experiment,
            "target": self.target,
            "model": self.model,
            "sampler": self.sampler,
            "objectives": {o.name: o.direction for o in self.objectives},
            "constraints": dict(self.constraints),
            "trials": self.trials,
            "statuses": dict(self.statuses),
            "energy_j": self.energy_j,
            "estimated": self.estimated,
            "front": list(self.front),
            "hypervolume": list(self.hypervolume),
            "random": self.random,
        }


def _spent_j(records: Sequence[RunRecord]) -> float | None:
    """Energy of every attempt of the records (failed and pruned ones count)."""
    total = 0.0
    seen = False
    for r in records:
        values = [a.energy_total_j for a in r.attempt_entries if a.energy_total_j is not None]
        if not values and r.energy.total_j is not None:
            values = [r.energy.total_j]
        if values:
            seen = True
            total += sum(values)
    return total if seen else None


def search_fronts(records: Sequence[RunRecord], study: str | None = None) -> list[SearchFront]:
    """Every search experiment's front among ``records`` (of ``study`` when given).

    Args:
        records: Records, oldest first (as the store yields them); mutation runs of the
            same target and model among them are the random comparison.
        study: Only this study's searches.
    """
    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for r in records:
        if r.mode != "search" or not r.search or (study is not None and r.study != study):
            continue
        index = int(r.search.get("experiment", -1))
        if trial_number(r.slot_id, index) is None or not r.status.finished:
            continue
        groups.setdefault((r.study, index), []).append(r)
    fronts = []
    for (name, index), trials in sorted(groups.items()):
        fronts.append(_front(name, index, trials, records))
    return fronts


def _front(
    study: str, index: int, trials: list[RunRecord], records: Sequence[RunRecord]
) -> SearchFront:
    last = trials[-1]
    assert last.search is not None
    objectives = [Objective(n, d == "maximize") for n, d in last.search["objectives"].items()]
    raw_constraints = dict(last.search.get("constraints") or {})
    constraints = {name: parse_constraint(text) for name, text in raw_constraints.items()}
    kept, pts = feasible_points(trials, objectives, constraints)
    random_runs = [
        r
        for r in records
        if r.mode == "mutation"
        and r.target == last.target
        and r.model == last.model
        and r.status.finished
    ]
    _, random_pts = feasible_points(random_runs, objectives, constraints)
    front_rows: list[dict[str, Any]] = []
    estimated = False
    if len(kept):
        mask = non_dominated(pts)
        on = [r for r, m in zip(kept, mask, strict=True) if m]
        for r in on:
            score = score_record(r, objectives, constraints)
            estimated |= score.estimated
            front_rows.append(
                {
                    "run_id": r.run_id,
                    "trial": trial_number(r.slot_id, index),
                    "values": dict(
                        zip([o.name for o in objectives], score.values or [], strict=True)
                    ),
                    "methods": score.methods,
                    "hyperparameters": dict(r.hyperparameters),
                }
            )
        front_rows.sort(key=lambda row: row["values"][objectives[0].name])
    curve: list[float] = []
    random_info: dict[str, Any] | None = None
    reference = reference_point(pts, random_pts)
    if reference is not None:
        ideal = np.vstack([p for p in (pts, random_pts) if p.size]).min(axis=0)
        scale = np.asarray(reference) - ideal
        scale[scale == 0] = 1.0

        def normalised(values: list[float]) -> list[float]:
            return [float(v / float(np.prod(scale))) for v in values]

        shifted_ref = list(np.asarray(reference))
        curve = normalised(hypervolume_curve(trials, objectives, constraints, shifted_ref))
        if random_runs:
            n = min(len(random_runs), len(trials))
            random_curve = normalised(
                hypervolume_curve(random_runs[:n], objectives, constraints, shifted_ref)
            )
            random_info = {
                "runs": n,
                "studies": sorted({r.study for r in random_runs[:n]}),
                "hypervolume": random_curve,
                "energy_j": _spent_j(random_runs[:n]),
            }
    elif random_runs:
        n = min(len(random_runs), len(trials))
        random_info = {
            "runs": n,
            "studies": sorted({r.study for r in random_runs[:n]}),
            "hypervolume": [0.0] * n,
            "energy_j": _spent_j(random_runs[:n]),
        }
    statuses: dict[str, int] = {}
    for r in trials:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
    return SearchFront(
        study=study,
        experiment=index,
        target=last.target,
        model=last.model,
        sampler=str(last.search.get("sampler")),
        objectives=objectives,
        constraints=raw_constraints,
        trials=len(trials),
        statuses=statuses,
        energy_j=_spent_j(trials),
        estimated=estimated,
        front=front_rows,
        hypervolume=curve if curve else [0.0] * len(trials),
        random=random_info,
    )


def pruned_count(front: SearchFront) -> int:
    """Trials stopped early by the pruner."""
    return front.statuses.get(RunStatus.PRUNED.value, 0)
