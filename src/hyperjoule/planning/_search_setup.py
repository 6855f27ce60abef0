"""A search experiment resolved against its target: space, objectives, budget, run settings.

Needs no Optuna: ``plan`` shows a search from this alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyperjoule.config import (
    LoadedStudy,
    Objective,
    PruneConfig,
    SearchExperiment,
    canonical_key,
    resolve_objectives,
)
from hyperjoule.config import Target as TargetConfig
from hyperjoule.planning._distributions import space_size
from hyperjoule.planning._plan import resolve_hyperparameters
from hyperjoule.planning._search_space import SearchSpace
from hyperjoule.records import HyperValue, RunSpec

__all__ = ["SearchSetup", "search_setups", "trial_number"]

_SLOT = re.compile(r"^e(\d+)-t(\d+)$")


def trial_number(slot_id: str, experiment: int) -> int | None:
    """The trial number of a search run's slot id (``e3-t12`` → 12), else None."""
    match = _SLOT.match(slot_id)
    if match is None or int(match.group(1)) != experiment:
        return None
    return int(match.group(2))


@dataclass(frozen=True)
class SearchSetup:
    """Everything about one search experiment that does not depend on results.

    Attributes:
        index: Position of the experiment in the study file.
        study: Study name.
        seed: Study seed (the sampler's seed derives from it).
        experiment: The parsed experiment.
        target: Target name.
        model: Model name (resolved like other modes).
        space: The searched space.
        objectives: Objectives with directions.
        constraints: ``{name: (operator, bound)}``.
        run: Settings every trial's :class:`RunSpec` shares (retries, cooldown, GPUs).
    """

    index: int
    study: str
    seed: int
    experiment: SearchExperiment
    target_config: TargetConfig
    target: str
    model: str | None
    space: SearchSpace
    objectives: tuple[Objective, ...]
    constraints: dict[str, tuple[str, float]]
    run: dict[str, Any]

    @property
    def trials(self) -> int:
        """The trial budget."""
        return self.experiment.trials

    @property
    def sampler(self) -> str:
        """Sampler name."""
        return self.experiment.sampler

    @property
    def prune(self) -> PruneConfig | None:
        """Pruning settings, if any."""
        return self.experiment.prune

    def capacity(self) -> float:
        """Distinct configurations the space holds (``math.inf`` with a float range)."""
        return math.prod(
            space_size(self.target_config.hyperparameters[n]) for n in self.space.names
        )

    def key_of(self, values: Mapping[str, HyperValue]) -> str:
        """Dedup key of a configuration as a search run."""
        return canonical_key(
            self.target, self.model, "search", values, self.target_config.hyperparameters
        )

    def spec(self, number: int, values: dict[str, HyperValue], optuna_trial: int) -> RunSpec:
        """The run of trial ``number``."""
        base = self.space.base
        prune = self.prune
        return RunSpec(
            slot_id=f"e{self.index}-t{number}",
            study=self.study,
            experiment=self.index,
            target=self.target,
            model=self.model,
            mode="search",
            hyperparameters=values,
            mutated=tuple(n for n in self.space.names if values[n] != base[n]),
            dedup_key=self.key_of(values),
            search={
                "experiment": self.index,
                "trial": number,
                "optuna_trial": optuna_trial,
                "sampler": self.sampler,
                "objectives": {o.name: o.direction for o in self.objectives},
                "constraints": dict(self.experiment.constraints),
                "prune": prune.model_dump() if prune is not None else None,
            },
            **self.run,
        )


def search_setups(loaded: LoadedStudy) -> list[SearchSetup]:
    """Resolve every search experiment of a study, in file order."""
    study = loaded.study
    out = []
    for index, exp in enumerate(study.experiments):
        if not isinstance(exp, SearchExperiment):
            continue
        target = loaded.targets[exp.target]
        model = exp.model if exp.model is not None or not target.models else target.models[0]
        names = (
            [n for n, hp in target.hyperparameters.items() if hp.mutable]
            if exp.search == "all"
            else list(exp.search)
        )
        base = resolve_hyperparameters(target, exp.hyperparameters)
        gpu_list = _pick(exp.gpus, _pick(study.defaults.gpus, target.gpus))
        idle = _pick(exp.cooldown, study.defaults.cooldown)
        run = {
            "max_retries": _pick(exp.max_retries, study.defaults.max_retries),
            "retry_on": tuple(_pick(exp.retry_on, study.defaults.retry_on)),
            "cooldown_s": float(_pick(exp.cooldown_s, study.defaults.cooldown_s)),
            "gpus": tuple(gpu_list) if gpu_list is not None else None,
            "idle_cooldown_max_s": idle.max_s if idle is not None else None,
            "idle_cooldown_within_c": idle.until_gpu_temp_within_c if idle else None,
        }
        out.append(
            SearchSetup(
                index=index,
                study=study.name,
                seed=study.seed,
                experiment=exp,
                target_config=target,
                target=exp.target,
                model=model,
                space=SearchSpace(target, names, base),
                objectives=tuple(resolve_objectives(exp, target)),
                constraints=exp.parsed_constraints(),
                run=run,
            )
        )
    return out


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value
