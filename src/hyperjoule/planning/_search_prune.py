"""Pruning a search's runs from their intermediate metrics.

Optuna's pruners need a single-objective study, and a search may have several
objectives; so pruning runs on a second study over the pruning metric alone, whose
trials mirror the search's: each run reports its intermediate values there as it prints
them, and the pruner (median or hyperband) decides whether to stop it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyperjoule.config import PruneConfig
from hyperjoule.planning._objectives import figure_value
from hyperjoule.planning._search_setup import SearchSetup
from hyperjoule.records import RunRecord, RunStatus

__all__ = ["PruneTrial", "TrialPruner"]


@dataclass
class PruneTrial:
    """One run's trial in the pruning study and the values it reported."""

    trial: Any  # optuna.Trial
    reported: dict[int, float] = field(default_factory=dict)


class TrialPruner:
    """The pruning study of one search (Optuna is imported by the caller).

    Args:
        optuna: The ``optuna`` module.
        setup: The search; its ``prune`` settings must be set.
    """

    def __init__(self, optuna: Any, setup: SearchSetup) -> None:
        assert setup.prune is not None
        self._optuna = optuna
        self.setup = setup
        self.config: PruneConfig = setup.prune
        pruners = optuna.pruners
        if self.config.pruner == "hyperband":
            pruner = pruners.HyperbandPruner(min_resource=max(1, self.config.min_epochs))
        else:
            pruner = pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        self.study = optuna.create_study(direction=self.direction(), pruner=pruner)

    def direction(self) -> str:
        """Whether a higher pruning metric is better: declared, else like its name says."""
        if self.config.goal is not None:
            return self.config.goal
        for obj in self.setup.objectives:
            if obj.name == self.config.metric:
                return obj.direction
        spec = self.setup.target_config.metrics.get(self.config.metric)
        if spec is not None and spec.goal is not None:
            return spec.goal
        # A validation metric prints like the test metric it predicts: accuracy-like
        # unless its name says loss or error.
        lower = any(w in self.config.metric.lower() for w in ("loss", "error", "perplexity"))
        return "minimize" if lower else "maximize"

    def add_recorded(self, record: RunRecord) -> None:
        """Add a run recorded earlier with its intermediate curve."""
        steps = self.intermediate(record)
        final, _ = figure_value(record, self.config.metric)
        if final is None and steps:
            final = steps[max(steps)]
        complete = final is not None and record.status is RunStatus.SUCCEEDED
        states = self._optuna.trial.TrialState
        self.study.add_trial(
            self._optuna.trial.create_trial(
                state=states.COMPLETE if complete else states.PRUNED,
                value=final if complete else None,
                intermediate_values=steps,
            )
        )

    def start(self) -> PruneTrial:
        """The mirror trial of a run about to start."""
        return PruneTrial(self.study.ask())

    def report(self, entry: PruneTrial, step: int, value: float) -> bool:
        """Report one intermediate value; True: the run should stop.

        Steps before ``min_epochs`` are reported but never prune.
        """
        if step in entry.reported:
            return False  # Optuna keeps the first value reported for a step
        entry.reported[step] = value
        entry.trial.report(value, step)
        return step >= self.config.min_epochs and bool(entry.trial.should_prune())

    def finish(self, entry: PruneTrial, record: RunRecord, complete: bool) -> None:
        """Close the mirror trial of a recorded run."""
        states = self._optuna.trial.TrialState
        final, _ = figure_value(record, self.config.metric)
        if final is None and entry.reported:
            final = entry.reported[max(entry.reported)]  # the last value printed
        if not complete or final is None:
            self.study.tell(entry.trial, state=states.PRUNED)
        else:
            self.study.tell(entry.trial, final)

    def abandon(self, entry: PruneTrial) -> None:
        """Close the mirror trial of a run that will not count (interrupted, withdrawn)."""
        self.study.tell(entry.trial, state=self._optuna.trial.TrialState.FAIL)

    def intermediate(self, record: RunRecord) -> dict[int, float]:
        """The pruning metric's intermediate values of a record, by step."""
        if not record.search:
            return {}
        steps: dict[int, float] = {}
        for point in record.search.get("intermediate") or []:
            step, value = point.get(self.config.step), point.get(self.config.metric)
            if isinstance(step, (int, float)) and isinstance(value, (int, float)):
                steps[int(step)] = float(value)
        return steps
