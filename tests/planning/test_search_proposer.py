"""The search proposer: distributions mapped to Optuna, state rebuilt from records, N in flight."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from hyperjoule.config import load_study
from hyperjoule.planning import (
    SearchProposer,
    SearchSetup,
    hypervolume,
    non_dominated,
    search_setups,
)
from hyperjoule.records import EnergyBlock, EnergyComponent, RunRecord, RunSpec, RunStatus
from search_support import SearchProject, search_experiment


def _setup(tmp_path: Path, **extra: object) -> SearchSetup:
    project = SearchProject(tmp_path)
    study = project.write_study([search_experiment(**extra)])
    return search_setups(load_study(study))[0]


def _record(spec: RunSpec, energy_j: float, acc: float, n: int, status: RunStatus) -> RunRecord:
    return RunRecord(
        run_id=f"r{n}",
        study=spec.study,
        session="x",
        slot_id=spec.slot_id,
        target=spec.target,
        model=spec.model,
        mode=spec.mode,
        hyperparameters=dict(spec.hyperparameters),
        mutated=list(spec.mutated),
        dedup_key=spec.dedup_key,
        status=status,
        started_at=f"{n:04d}",
        metrics={"test_accuracy": acc} if status is RunStatus.SUCCEEDED else {},
        energy=EnergyBlock({"cpu_pkg": EnergyComponent(energy_j=energy_j, method="counter")}),
        search=spec.search,
    )


def test_declared_spaces_map_to_optuna_distributions(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    space = setup.space
    lr = space.distribution("lr")
    assert isinstance(lr, optuna.distributions.FloatDistribution) and lr.log
    assert (lr.low, lr.high) == (0.001, 1.0)
    width = space.distribution("width")
    assert isinstance(width, optuna.distributions.IntDistribution) and width.log
    epochs = space.distribution("epochs")
    assert isinstance(epochs, optuna.distributions.IntDistribution) and not epochs.log
    optim = space.distribution("optim")
    assert isinstance(optim, optuna.distributions.CategoricalDistribution)
    assert optim.choices == ("sgd", "adam")
    # zero_probability: a conditional switch, the range only when it is off.
    zero = space.to_params({**space.base, "wd": 0.0})
    assert zero is not None and zero[0]["wd:zero"] is True and "wd" not in zero[0]
    on = space.to_params({**space.base, "wd": 0.001})
    assert on is not None and on[0]["wd:zero"] is False and on[0]["wd"] == 0.001
    # Outside the declared space (another study's range): not a point of this search.
    assert space.to_params({**space.base, "lr": 5.0}) is None


def test_proposals_are_typed_distinct_and_within_the_space(tmp_path: Path) -> None:
    setup = _setup(tmp_path, trials=30, sampler="random")
    proposer = SearchProposer(setup, [])
    keys, zeros = set(), 0
    for n in range(30):
        spec = proposer.ask()
        assert spec is not None and spec.mode == "search" and spec.slot_id == f"e0-t{n + 1}"
        hp = spec.hyperparameters
        assert isinstance(hp["epochs"], int) and 1 <= hp["epochs"] <= 8
        assert isinstance(hp["lr"], float) and 0.001 <= hp["lr"] <= 1.0
        assert hp["optim"] in ("sgd", "adam")
        zeros += hp["wd"] == 0.0
        assert hp["wd"] == 0.0 or 1e-5 <= hp["wd"] <= 1e-2
        keys.add(spec.dedup_key)
        proposer.tell(_record(spec, 1.0 + n, 0.5, n, RunStatus.SUCCEEDED))
    assert len(keys) == 30 and 0 < zeros < 30
    assert proposer.ask() is None and proposer.complete


def test_several_trials_in_flight_and_told_out_of_order(tmp_path: Path) -> None:
    setup = _setup(tmp_path, trials=6)
    proposer = SearchProposer(setup, [])
    first = [proposer.ask() for _ in range(4)]
    assert all(s is not None for s in first)
    assert len({s.dedup_key for s in first if s is not None}) == 4
    assert proposer.in_flight == 4 and proposer.remaining == 2
    for n, spec in enumerate(reversed(first)):
        assert spec is not None
        proposer.tell(_record(spec, 2.0 + n, 0.6 + n / 10, n, RunStatus.SUCCEEDED))
    rest = [proposer.ask(), proposer.ask()]
    assert proposer.ask() is None  # the budget is spoken for
    for n, spec in enumerate(rest):
        assert spec is not None
        proposer.tell(_record(spec, 1.0, 0.5, 10 + n, RunStatus.FAILED))
    assert proposer.complete
    states = [t.state for t in proposer.study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) >= 2  # failed trials told as failed


def test_a_rebuilt_proposer_continues_the_search(tmp_path: Path) -> None:
    setup = _setup(tmp_path, trials=5)
    first = SearchProposer(setup, [])
    records = []
    for n in range(3):
        spec = first.ask()
        assert spec is not None
        status = RunStatus.PRUNED if n == 1 else RunStatus.SUCCEEDED
        records.append(_record(spec, 1.0 + n, 0.7, n, status))
        first.tell(records[-1])
    interrupted = first.ask()
    assert interrupted is not None
    records.append(_record(interrupted, 1.0, 0.0, 9, RunStatus.INTERRUPTED))
    again = SearchProposer(setup, records)
    states = [t.state for t in again.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert states.count(optuna.trial.TrialState.PRUNED) == 1
    assert len(again.finished) == 3 and again.remaining == 2
    spec = again.ask()
    assert spec is not None and spec.slot_id == "e0-t5"  # never reuses a slot id
    assert spec.dedup_key not in {r.dedup_key for r in records[:3]}


def test_warm_start_adds_recorded_runs_that_fit_the_space(tmp_path: Path) -> None:
    setup = _setup(tmp_path, warm_start=True)
    base = dict(setup.space.base)
    spec = setup.spec(1, base, 0)
    inside = _record(spec, 1.0, 0.8, 1, RunStatus.SUCCEEDED)
    outside = _record(setup.spec(2, {**base, "lr": 3.0}, 0), 1.0, 0.8, 2, RunStatus.SUCCEEDED)
    proposer = SearchProposer(setup, [], warm=[inside, outside])
    assert proposer.warm_count == 1
    assert len(proposer.study.trials) == 1 and proposer.remaining == setup.trials
    assert proposer.ask().dedup_key != inside.dedup_key  # type: ignore[union-attr]


def test_a_space_smaller_than_the_budget_is_refused(tmp_path: Path) -> None:
    from hyperjoule.errors import PlanError

    setup = _setup(tmp_path, search=["optim"], trials=3)
    with pytest.raises(PlanError, match="holds 2 configurations"):
        SearchProposer(setup, [])


def test_hypervolume_of_known_fronts() -> None:
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]])
    assert non_dominated(pts).tolist() == [True, True, True, False]
    assert hypervolume(pts, [4.0, 4.0]) == pytest.approx(3 + 2 + 1)
    cube = np.array([[0.0, 0.0, 0.0]])
    assert hypervolume(cube, [1.0, 2.0, 3.0]) == pytest.approx(6.0)
    two = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # Union of boxes [0,2]x[1,2]x[1,2] (2) and [1,2]x[0,2]x[0,2] (4) overlapping in 1.
    assert hypervolume(two, [2.0, 2.0, 2.0]) == pytest.approx(5.0)
    assert hypervolume(np.array([[5.0, 5.0]]), [4.0, 4.0]) == 0.0
    assert math.isclose(hypervolume(np.array([[1.0]]), [3.0]), 2.0)


def test_search_runs_inherit_retry_on(tmp_path: Path) -> None:
    setup = _setup(tmp_path, retry_on=["timeout", "oom"])
    spec = setup.spec(1, dict(setup.space.base), 0)
    assert spec.retry_on == ("timeout", "oom")
    assert _setup(tmp_path / "d").spec(1, dict(setup.space.base), 0).retry_on == ("oom",)
