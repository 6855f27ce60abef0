"""The plan of a study as it stands against the results database (what is left to run)."""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import dataclass, field

from hyperjoule.config import LoadedStudy
from hyperjoule.execution._lifecycle import slot_results, target_changes
from hyperjoule.planning import SearchSetup, plan_study, search_setups, trial_number
from hyperjoule.records import RunSpec, RunStatus
from hyperjoule.storage import ResultsStore

__all__ = ["PlanState", "SearchProgress", "load_plan_state"]


@dataclass
class SearchProgress:
    """A search experiment and how many of its trials are finished in the database."""

    setup: SearchSetup
    done: int

    @property
    def left(self) -> int:
        """Trials still to run."""
        return max(0, self.setup.trials - self.done)


@dataclass
class PlanState:
    """A study's planned runs split into finished and still to run.

    Attributes:
        specs: Every planned run, in order.
        todo: The runs still to execute (not yet finished in the database).
        done: Slot ids already finished.
        estimate_s: Estimated seconds for ``todo`` from earlier runs of the same targets
            and models; None when no run of some of them was measured yet.
        unestimated: ``target/model`` names with no earlier run to estimate from.
        replanned: True when the stored plan did not match the study file and the plan
            was made anew.
        rerun_of: Slot id -> run id of the finished record a ``--rerun`` replaces.
        changes: One line per target that changed since the study's runs were recorded.
        median_s: Median duration of earlier succeeded runs per ``(target, model)``, in
            seconds (what ``estimate_s`` and the live console's ETA are made of); targets
            without one are missing.
    """

    specs: list[RunSpec]
    todo: list[RunSpec]
    done: set[str]
    estimate_s: float | None
    unestimated: list[str] = field(default_factory=list)
    replanned: bool = False
    rerun_of: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    searches: list[SearchProgress] = field(default_factory=list)
    median_s: dict[tuple[str, str | None], float] = field(default_factory=dict)

    @property
    def runs_left(self) -> int:
        """Planned runs to execute plus search trials still to run."""
        return len(self.todo) + sum(s.left for s in self.searches)


def load_plan_state(
    loaded: LoadedStudy,
    store: ResultsStore | None,
    *,
    save: bool,
    rerun: Collection[RunStatus] = (),
) -> PlanState:
    """Plan a study, or reuse its stored plan, and find what is left to run.

    A stored plan is reused while the study and targets files are unchanged, so that a
    resumed study runs exactly the configurations it planned. When they changed, the
    study is planned again from its seed; this study's own earlier runs are not excluded
    from the new plan, so unchanged experiments draw the same configurations and their
    finished runs still count.

    Args:
        loaded: The validated study.
        store: The results database, or None when there is none yet.
        save: Store a new plan (False for a dry run, which writes nothing).
        rerun: Final statuses whose slots run again (``--rerun``); their earlier
            records stay as history.
    """
    name = loaded.name
    if store is None:
        specs, replanned = plan_study(loaded), False
    elif save:
        # Read what is taken, plan and save in one write transaction: a study planned
        # at the same moment into the same results directory waits, then sees this plan.
        with store.reserve(f"plan study {name!r}"):
            specs, replanned = _plan_against(loaded, store, save=True)
    else:
        specs, replanned = _plan_against(loaded, store, save=False)
    results = slot_results(store.iter_runs(study=name)) if store is not None else {}
    finished = {key for key, r in results.items() if r.status not in rerun}
    todo = [s for s in specs if (s.slot_id, s.dedup_key) not in finished]
    done = {s.slot_id for s in specs} - {s.slot_id for s in todo}
    rerun_of = {
        s.slot_id: results[(s.slot_id, s.dedup_key)].run_id
        for s in todo
        if (s.slot_id, s.dedup_key) in results
    }
    # Search trials are never rerun: a failed trial is a result the search learnt from.
    searches = [
        SearchProgress(
            setup,
            sum(1 for slot, _ in results if trial_number(slot, setup.index) is not None),
        )
        for setup in search_setups(loaded)
    ]
    trial_specs = [
        p.setup.spec(0, dict(p.setup.space.base), -1) for p in searches for _ in range(p.left)
    ]
    estimate_s, unestimated, medians = _estimate(todo + trial_specs, store)
    changes = target_changes(loaded.targets, loaded.used_targets(), results.values())
    return PlanState(
        specs,
        todo,
        done,
        estimate_s,
        unestimated,
        replanned,
        rerun_of=rerun_of,
        changes=changes,
        searches=searches,
        median_s=medians,
    )


def _plan_against(
    loaded: LoadedStudy, store: ResultsStore, *, save: bool
) -> tuple[list[RunSpec], bool]:
    """The stored plan while the files are unchanged, else a new one avoiding taken keys.

    Taken: configurations measured by any study or planned by another study (a plan
    reserves its configurations), minus this study's own earlier runs.
    """
    name = loaded.name
    stored = store.load_plan(name)
    if stored is not None and stored[0] == loaded.config_hash:
        return stored[1], False
    own = {r.dedup_key for r in store.iter_runs(study=name)}

    def taken(target: str, model: str | None) -> set[str]:
        measured = store.measured_keys(target, model)
        return (measured | store.reserved_keys(target, model, besides=name)) - own

    specs = plan_study(loaded, taken)
    if save:
        store.save_plan(name, loaded.config_hash, specs)
    return specs, stored is not None


def _estimate(
    todo: list[RunSpec], store: ResultsStore | None
) -> tuple[float | None, list[str], dict[tuple[str, str | None], float]]:
    total_s = 0.0
    unknown: list[str] = []
    medians: dict[tuple[str, str | None], float | None] = {}
    for spec in todo:
        key = (spec.target, spec.model)
        if key not in medians:
            durations = store.durations_s(spec.target, spec.model) if store is not None else []
            medians[key] = statistics.median(durations) if durations else None
        median = medians[key]
        if median is None:
            label = spec.target + (f"/{spec.model}" if spec.model else "")
            if label not in unknown:
                unknown.append(label)
        else:
            total_s += median + spec.cooldown_s
    known = {k: v for k, v in medians.items() if v is not None}
    return (None if unknown else total_s), unknown, known
