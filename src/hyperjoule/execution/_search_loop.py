"""Search experiments as a run source: ask for runs as results arrive, tell each result.

The proposer (:class:`~hyperjoule.planning.SearchProposer`) is rebuilt from the database
when the search becomes active, so a study killed mid-search resumes with the trials it
already recorded and ends with exactly ``trials`` finished ones. Its runs are the same
:class:`~hyperjoule.records.RunSpec` as every other mode and go through the same
coordinator, executors and recorder; only their choice depends on earlier results. With
an executor of capacity N, up to N trials are in flight (Optuna's ask-and-tell).
"""

from __future__ import annotations

import logging

from hyperjoule.execution._intermediate import PointCallback
from hyperjoule.execution._plan_state import SearchProgress
from hyperjoule.planning import SearchProposer, trial_number
from hyperjoule.records import RunRecord, RunSpec
from hyperjoule.storage import ResultsStore

__all__ = ["SearchRuns", "build_proposer"]

logger = logging.getLogger(__name__)


def build_proposer(store: ResultsStore, progress: SearchProgress) -> SearchProposer:
    """Rebuild a search's Optuna study from the records in the database."""
    setup = progress.setup
    own = list(store.iter_runs(study=setup.study))
    warm: list[RunRecord] = []
    if setup.experiment.warm_start:
        warm = [
            r
            for r in store.iter_runs()
            if r.target == setup.target
            and r.model == setup.model
            and r.status.finished
            and not (r.study == setup.study and trial_number(r.slot_id, setup.index) is not None)
        ]
    proposer = SearchProposer(setup, own, warm)
    if proposer.warm_count:
        logger.info(
            "search experiments.%d: warm start from %d recorded run(s)",
            setup.index,
            proposer.warm_count,
        )
    return proposer


def pruning_callback(proposer: SearchProposer, spec: RunSpec) -> PointCallback | None:
    """The callback that reports a run's intermediate points to the search's pruner."""
    prune = proposer.setup.prune
    if prune is None:
        return None

    def on_point(point: dict[str, float]) -> bool:
        step, value = point.get(prune.step), point.get(prune.metric)
        if step is None or value is None:
            return False
        return proposer.report(spec.slot_id, int(step), value)

    return on_point


class SearchRuns:
    """One search experiment's remaining trials, proposed as results arrive.

    Args:
        store: The results database (the proposer is rebuilt from it when started).
        progress: The search and its finished trials.
        observer: Shown one progress line per finished trial (``search_progress``),
            when it has that method; else the line is logged.
    """

    def __init__(self, store: ResultsStore, progress: SearchProgress, observer: object) -> None:
        self._store = store
        self._progress = progress
        self._observer = observer
        self._proposer: SearchProposer | None = None
        self._stopped = False

    def start(self) -> None:
        """Build the proposer now: it learns from every run recorded before."""
        self._proposer = build_proposer(self._store, self._progress)

    def next_spec(self) -> RunSpec | None:
        """The next trial, or None while the budget is spoken for."""
        if self._proposer is None or self._stopped:
            return None
        return self._proposer.ask()

    @property
    def exhausted(self) -> bool:
        """True when every trial of the budget was proposed."""
        return self._proposer is None or self._proposer.remaining <= 0

    def on_point(self, spec: RunSpec) -> PointCallback | None:
        """The pruner's callback for ``spec``."""
        return pruning_callback(self._proposer, spec) if self._proposer is not None else None

    def finished(self, spec: RunSpec, record: RunRecord) -> None:
        """Tell the search the run's result and show where it stands."""
        proposer = self._proposer
        if proposer is None:
            return
        proposer.tell(record)
        line = (
            f"search experiments.{proposer.setup.index}: "
            f"{len(proposer.finished)}/{proposer.setup.trials} trials; {proposer.best_line()}"
        )
        show = getattr(self._observer, "search_progress", None)
        if callable(show):
            show(line)
        else:
            logger.info("%s", line)
