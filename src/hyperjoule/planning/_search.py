"""Energy-aware search: an Optuna study driven ask-and-tell, rebuilt from the database.

The results database stays the source of truth. A :class:`SearchProposer` is built from
the records already there: every finished trial of the experiment (and, with
``warm_start``, every finished run of the same target and model whose unsearched
hyperparameters match) is added to an in-memory Optuna study, so a resumed search
continues where it stopped instead of starting over. The coordinator then asks for the
next run whenever a slot frees (:meth:`SearchProposer.ask`) and tells each record as it
arrives (:meth:`SearchProposer.tell`); several trials may be in flight at once (TPE runs
with constant liar; NSGA-II, GP and random need nothing more).

Pruning runs on a second, single-objective study (:mod:`._search_prune`).
"""

from __future__ import annotations

import logging
import random
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hyperjoule._imports import import_optional
from hyperjoule.errors import PlanError
from hyperjoule.planning._objectives import TrialScore, score_record
from hyperjoule.planning._plan import _draw_new
from hyperjoule.planning._search_prune import PruneTrial, TrialPruner
from hyperjoule.planning._search_setup import SearchSetup, trial_number
from hyperjoule.records import HyperValue, RunRecord, RunSpec, RunStatus

__all__ = ["SearchProposer"]

logger = logging.getLogger(__name__)

_CONSTRAINTS_ATTR = "hyperjoule_constraints"
_OPTUNA_CONSTRAINTS_KEY = "constraints"  # where Optuna's samplers read a trial's violations
_PRUNED_VIOLATION = 1.0e6
"""Constraint violation told for a pruned trial: it was stopped because it could not reach
the constraints, so samplers rank it below every infeasible trial. (TPE otherwise puts
pruned trials among the good ones while few trials are feasible.)"""
_DUPLICATE_ASKS = 25  # proposals of an already measured configuration before a random draw


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna flags several features we rely on as experimental; that is not the user's news."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Independent-sampling notices about conditional parameters (zero switches).
        warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
        yield


@dataclass
class _InFlight:
    spec: RunSpec
    trial: Any  # optuna.Trial
    prune: PruneTrial | None


def _constraints_of(trial: Any) -> list[float]:
    return list(trial.user_attrs.get(_CONSTRAINTS_ATTR, []))


def _set_constraints(trial: Any, names: Iterable[str], violations: list[float] | None) -> None:
    """Give the sampler a trial's constraint violations (<= 0: met)."""
    if violations is None:
        return
    if hasattr(trial, "set_constraint"):  # Optuna >= 5
        for name, value in zip(names, violations, strict=True):
            trial.set_constraint(name, value)
    else:  # older Optuna reads them through the sampler's constraints_func
        trial.set_user_attr(_CONSTRAINTS_ATTR, violations)


class SearchProposer:
    """Proposes a search's runs and learns from their records.

    Args:
        setup: The resolved experiment.
        records: Records of this study (any status); the experiment's are picked out.
        warm: Other finished records of the same target and model (``warm_start``).

    Raises:
        PreflightError: Optuna is not installed (with the install hint).
        PlanError: The space holds fewer new configurations than trials left.
    """

    def __init__(
        self,
        setup: SearchSetup,
        records: Iterable[RunRecord],
        warm: Iterable[RunRecord] = (),
    ) -> None:
        optuna = import_optional("optuna", extra="search", feature="mode: search")
        # Optuna logs every trial (and tuning notices) through its own stderr handler; our records
        # and progress line already say it.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.setup = setup
        self._optuna = optuna
        self._lock = threading.Lock()
        own = [r for r in records if trial_number(r.slot_id, setup.index) is not None]
        own.sort(key=lambda r: (r.started_at or "", r.slot_id))
        self.finished: list[RunRecord] = [r for r in own if r.status.finished]
        self._next_number = 1 + max(
            (trial_number(r.slot_id, setup.index) or 0 for r in own), default=0
        )
        self._in_flight: dict[str, _InFlight] = {}
        self._taken: dict[str, RunRecord] = {}
        seed = zlib.crc32(f"{setup.seed}:{setup.index}:{len(own)}".encode())
        self._rng = random.Random(seed)
        with _quiet_optuna():
            self.study = optuna.create_study(
                directions=[o.direction for o in setup.objectives],
                sampler=self._sampler(seed),
            )
            self.pruner = TrialPruner(optuna, setup) if setup.prune is not None else None
            self.warm_count = 0
            if setup.experiment.warm_start:
                for record in warm:
                    if record.status.finished and self._add_recorded(record):
                        self.warm_count += 1
            for record in self.finished:
                self._add_recorded(record)
        left = setup.trials - len(self.finished)
        capacity = setup.capacity()
        if left > 0 and capacity - len(self._taken) < left:
            raise PlanError(
                f"experiments.{setup.index}: the searched space holds {capacity:g} "
                f"configurations, {len(self._taken)} already measured, fewer than the "
                f"{left} trials left; lower 'trials' or search more hyperparameters"
            )

    # Construction -------------------------------------------------------------------
    def _sampler(self, seed: int) -> Any:
        samplers = self._optuna.samplers
        trials = self.setup.trials
        # Optuna >= 5 reads constraints set on the trial; older ones need a function.
        legacy = not hasattr(self._optuna.trial.Trial, "set_constraint")
        constraints = self._constraints_func if self.setup.constraints and legacy else None
        startup = max(2, min(10, trials // 4))
        name = self.setup.sampler
        if name == "tpe":
            return samplers.TPESampler(
                seed=seed,
                n_startup_trials=startup,
                multivariate=True,
                group=True,
                constant_liar=True,
                constraints_func=constraints,
            )
        if name == "nsga2":
            return samplers.NSGAIISampler(
                seed=seed,
                population_size=max(4, min(50, trials // 5)),
                constraints_func=constraints,
            )
        if name == "gp":
            return samplers.GPSampler(
                seed=seed,
                n_startup_trials=startup,
                constraints_func=constraints,
                warn_independent_sampling=False,
            )
        return samplers.RandomSampler(seed=seed)

    @staticmethod
    def _constraints_func(trial: Any) -> list[float]:
        return _constraints_of(trial)

    def _add_recorded(self, record: RunRecord) -> bool:
        """Tell Optuna about a run recorded earlier; False when it is not in this space."""
        mapped = self.setup.space.to_params(record.hyperparameters)
        if mapped is None:
            return False
        params, dists = mapped
        self._taken[self.setup.key_of(record.hyperparameters)] = record
        score = score_record(record, self.setup.objectives, self.setup.constraints)
        state, values = self._state_of(record, score)
        extra: dict[str, Any] = {}
        violations = self._violations(record, score)
        if self.setup.constraints and violations is not None:
            if hasattr(self._optuna.trial.Trial, "set_constraint"):
                extra["constraints"] = dict(zip(self.setup.constraints, violations, strict=True))
            else:
                extra["user_attrs"] = {_CONSTRAINTS_ATTR: violations}
                extra["system_attrs"] = {_OPTUNA_CONSTRAINTS_KEY: tuple(violations)}
        trial = self._optuna.trial.create_trial(
            state=state, values=values, params=params, distributions=dists, **extra
        )
        self.study.add_trial(trial)
        if self.pruner is not None:
            self.pruner.add_recorded(record)
        return True

    def _violations(self, record: RunRecord, score: TrialScore) -> list[float] | None:
        if record.status is RunStatus.PRUNED and self.setup.constraints:
            return [_PRUNED_VIOLATION] * len(self.setup.constraints)
        return score.violations

    def _state_of(self, record: RunRecord, score: TrialScore) -> tuple[Any, list[float] | None]:
        states = self._optuna.trial.TrialState
        if record.status is RunStatus.PRUNED:
            return states.PRUNED, None
        if record.status is RunStatus.SUCCEEDED and score.values is not None:
            return states.COMPLETE, score.values
        return states.FAIL, None

    # Ask and tell -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Runs proposed and not yet told."""
        return len(self._in_flight)

    @property
    def remaining(self) -> int:
        """Runs still to propose (the budget minus finished and in-flight trials)."""
        return max(0, self.setup.trials - len(self.finished) - len(self._in_flight))

    @property
    def complete(self) -> bool:
        """True when the search finished its trial budget."""
        return len(self.finished) >= self.setup.trials

    def ask(self) -> RunSpec | None:
        """The next run to execute, or None when the budget is spoken for."""
        with self._lock, _quiet_optuna():
            if self.remaining <= 0:
                return None
            trial, values = self._ask_new()
            number = self._next_number
            self._next_number += 1
            spec = self.setup.spec(number, values, trial.number)
            prune = self.pruner.start() if self.pruner is not None else None
            self._in_flight[spec.slot_id] = _InFlight(spec, trial, prune)
            return spec

    def _ask_new(self) -> tuple[Any, dict[str, HyperValue]]:
        states = self._optuna.trial.TrialState
        flying = {f.spec.dedup_key for f in self._in_flight.values()}
        for _ in range(_DUPLICATE_ASKS):
            trial = self.study.ask()
            values = self.setup.space.suggest(trial)
            key = self.setup.key_of(values)
            earlier = self._taken.get(key)
            if earlier is None and key not in flying:
                return trial, values
            # Measured already (or in flight): tell the sampler what it would learn, ask again.
            if earlier is not None:
                score = score_record(earlier, self.setup.objectives, self.setup.constraints)
                state, scores = self._state_of(earlier, score)
                _set_constraints(trial, self.setup.constraints, self._violations(earlier, score))
                self.study.tell(trial, scores, state=state)
            else:
                self.study.tell(trial, state=states.FAIL)
        # The sampler keeps proposing measured points (a small finite space): draw one
        # that is new and have the sampler evaluate exactly that.
        space = self.setup.space
        hps = [space.target.hyperparameters[n] for n in space.names]
        fresh = _draw_new(
            space.base,
            space.names,
            hps,
            self._rng,
            self.setup.key_of,
            set(self._taken) | flying,
            self.setup.capacity(),
        )
        if fresh is None:
            raise PlanError(
                f"experiments.{self.setup.index}: no new configuration is left in the "
                "searched space; lower 'trials' or widen the space"
            )
        mapped = space.to_params(fresh)
        assert mapped is not None
        self.study.enqueue_trial(mapped[0])
        trial = self.study.ask()
        return trial, space.suggest(trial)

    def forget(self, spec: RunSpec) -> None:
        """Withdraw a proposed run that will not start (the study is stopping)."""
        states = self._optuna.trial.TrialState
        with self._lock, _quiet_optuna():
            entry = self._in_flight.pop(spec.slot_id, None)
            if entry is None:
                return
            self.study.tell(entry.trial, state=states.FAIL)
            if self.pruner is not None and entry.prune is not None:
                self.pruner.abandon(entry.prune)

    def report(self, slot_id: str, step: int, value: float) -> bool:
        """Report an intermediate value of a running trial; True: stop it (pruned).

        Steps before ``prune.min_epochs`` are reported but never prune.
        """
        with self._lock, _quiet_optuna():
            entry = self._in_flight.get(slot_id)
            if entry is None or entry.prune is None or self.pruner is None:
                return False
            return self.pruner.report(entry.prune, step, value)

    def tell(self, record: RunRecord) -> None:
        """Learn from a recorded run (of any status) proposed by :meth:`ask`."""
        states = self._optuna.trial.TrialState
        with self._lock, _quiet_optuna():
            entry = self._in_flight.pop(record.slot_id, None)
            if entry is None:
                return
            if not record.status.finished:
                # Interrupted: not a trial; the next session proposes the slot again.
                self.study.tell(entry.trial, state=states.FAIL)
                if self.pruner is not None and entry.prune is not None:
                    self.pruner.abandon(entry.prune)
                return
            score = score_record(record, self.setup.objectives, self.setup.constraints)
            state, values = self._state_of(record, score)
            _set_constraints(entry.trial, self.setup.constraints, self._violations(record, score))
            self.study.tell(entry.trial, values, state=state)
            if self.pruner is not None and entry.prune is not None:
                self.pruner.finish(entry.prune, record, complete=state == states.COMPLETE)
            self.finished.append(record)
            self._taken[record.dedup_key] = record

    # Progress -----------------------------------------------------------------------
    def best_line(self) -> str:
        """The best trade-off so far, one line (the progress display shows it)."""
        with self._lock:
            records = list(self.finished)
        from hyperjoule.planning._front import describe_front

        return describe_front(records, self.setup.objectives, self.setup.constraints)
