"""Running a search experiment: ask for a run, execute it, record it, tell the result.

The proposer (:class:`~hyperjoule.planning.SearchProposer`) is rebuilt from the database
at the start of every session, so a study killed mid-search resumes with the trials it
already recorded and ends with exactly ``trials`` finished ones. Runs are the same
:class:`~hyperjoule.records.RunSpec` as every other mode and go through the same
session code (meters, retries, records); only their choice depends on earlier results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hyperjoule.execution._plan_state import SearchProgress
from hyperjoule.execution._session import PointCallback, RunObserver, SessionContext
from hyperjoule.planning import SearchProposer, trial_number
from hyperjoule.records import RunRecord, RunSpec
from hyperjoule.storage import ResultsStore

__all__ = ["SearchCounter", "build_proposer", "run_search"]

logger = logging.getLogger(__name__)


@dataclass
class SearchCounter:
    """Run numbering shared with the planned runs (``run 7/20`` in the progress)."""

    index: int
    total: int
    last: RunSpec | None = None  # the run before the next one (its cooldown is due)


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


def run_search(
    context: SessionContext,
    proposer: SearchProposer,
    stop: threading.Event,
    observer: RunObserver | None,
    counter: SearchCounter,
    records: list[RunRecord],
    cooldown: Callable[[RunSpec], None],
) -> None:
    """Run one search's remaining trials one after another, until done or stopped.

    ``cooldown`` pauses after a run; it is called before the next one starts.
    """
    while not stop.is_set():
        spec = proposer.ask()
        if spec is None:
            return
        if counter.last is not None:
            cooldown(counter.last)
            if stop.is_set():
                proposer.forget(spec)
                return
        counter.index += 1
        counter.last = spec
        record = context.execute(
            spec, counter.index, counter.total, stop, observer, pruning_callback(proposer, spec)
        )
        proposer.tell(record)
        records.append(record)
        line = (
            f"search experiments.{proposer.setup.index}: "
            f"{len(proposer.finished)}/{proposer.setup.trials} trials; {proposer.best_line()}"
        )
        show = getattr(observer, "search_progress", None)
        if callable(show):
            show(line)
        else:
            logger.info("%s", line)
