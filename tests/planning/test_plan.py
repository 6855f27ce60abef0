"""Planning: full typed hyperparameters, distinct mutations, reproducibility, dedup."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import Project
from hyperjoule.config import Hyperparameter, canonical_key, coerce_value, load_study
from hyperjoule.errors import PlanError
from hyperjoule.planning import plan_study, sample_value

MUT = {"target": "toy", "model": "small", "mode": "mutation"}


def test_default_mode_repeats_the_defaults_with_every_hyperparameter(project: Project) -> None:
    study = project.write_study([{"target": "toy", "model": "large", "runs": 3}])
    specs = plan_study(load_study(study))
    assert [s.slot_id for s in specs] == ["e0-1", "e0-2", "e0-3"]
    for spec in specs:
        assert spec.hyperparameters == {"epochs": 2, "lr": 0.1, "optim": "sgd"}
        assert type(spec.hyperparameters["epochs"]) is int
        assert spec.mutated == () and spec.mode == "default" and spec.model == "large"


def test_joint_mutation_is_distinct_typed_and_never_default(project: Project) -> None:
    study = project.write_study([{**MUT, "mutate": ["epochs", "optim"], "runs": 9}])
    specs = plan_study(load_study(study))
    keys = {s.dedup_key for s in specs}
    assert len(keys) == 9  # 5 epochs x 2 optimisers = 10, minus the defaults
    for spec in specs:
        hp = spec.hyperparameters
        assert set(hp) == {"epochs", "lr", "optim"}
        assert hp["lr"] == 0.1  # not mutated: the default
        assert (hp["epochs"], hp["optim"]) != (2, "sgd")
        assert 1 <= hp["epochs"] <= 5 and isinstance(hp["epochs"], int)
        assert set(spec.mutated) <= {"epochs", "optim"} and spec.mutated


def test_one_at_a_time_changes_one_parameter_per_run(project: Project) -> None:
    study = project.write_study([{**MUT, "mutate": "all", "strategy": "one_at_a_time", "runs": 1}])
    specs = plan_study(load_study(study))
    assert len(specs) == 3
    defaults = {"epochs": 2, "lr": 0.1, "optim": "sgd"}
    for spec, name in zip(specs, ["epochs", "lr", "optim"], strict=True):
        differing = [k for k in defaults if spec.hyperparameters[k] != defaults[k]]
        assert differing == [name] and spec.mutated == (name,)


def test_plan_is_reproducible_from_the_seed(project: Project) -> None:
    study = project.write_study([{**MUT, "mutate": ["lr", "epochs"], "runs": 4}])
    first = [s.hyperparameters for s in plan_study(load_study(study))]
    again = [s.hyperparameters for s in plan_study(load_study(study))]
    assert first == again
    other = project.write_study([{**MUT, "mutate": ["lr", "epochs"], "runs": 4}], seed=8)
    assert [s.hyperparameters for s in plan_study(load_study(other))] != first


def test_measured_configurations_are_not_planned_again(project: Project) -> None:
    study = project.write_study([{**MUT, "mutate": ["epochs"], "runs": 2}])
    loaded = load_study(study)
    first = plan_study(loaded)
    measured = {s.dedup_key for s in first}
    second = plan_study(loaded, lambda target, model: measured)
    assert not measured & {s.dedup_key for s in second}
    # 4 non-default values exist; 2 measured, so asking for 3 more must be refused.
    bigger = load_study(project.write_study([{**MUT, "mutate": ["epochs"], "runs": 3}]))
    with pytest.raises(PlanError, match="cannot find 3 distinct new configurations"):
        plan_study(bigger, lambda target, model: measured)


def test_exhausting_a_finite_space_exactly_works(project: Project) -> None:
    study = project.write_study([{**MUT, "mutate": ["epochs", "optim"], "runs": 9}])
    for seed in range(5):
        specs = plan_study(
            load_study(
                project.write_study([{**MUT, "mutate": ["epochs", "optim"], "runs": 9}], seed=seed)
            )
        )
        assert len({s.dedup_key for s in specs}) == 9
    assert study.exists()


def test_mode_is_part_of_the_key() -> None:
    hp = {"epochs": Hyperparameter(flag="--e", type="int", default=1, range=(1, 9))}
    assert canonical_key("t", None, "default", {"epochs": 3}, hp) != canonical_key(
        "t", None, "parallel", {"epochs": 3}, hp
    )


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_int_keys_ignore_representation(value: int) -> None:
    hp = {"n": Hyperparameter(flag="--n", type="int", default=1)}
    keys = {
        canonical_key("t", "m", "mutation", {"n": v}, hp)
        for v in (value, float(value), str(value), f"{value}.000000")
    }
    assert len(keys) == 1


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_float_keys_ignore_representation(value: float) -> None:
    hp = {"x": Hyperparameter(flag="--x", type="float", default=0.5)}
    assert canonical_key("t", None, "mutation", {"x": value}, hp) == canonical_key(
        "t", None, "mutation", {"x": repr(value)}, hp
    )


def test_zero_probability_gives_exact_zeros() -> None:
    hp = Hyperparameter(
        flag="--wd",
        type="float",
        default=0.0,
        range=(1e-5, 1e-3),
        distribution="log_uniform",
        zero_probability=0.3,
    )
    rng = random.Random(1)
    values = [sample_value(hp, rng) for _ in range(2000)]
    zeros = sum(1 for v in values if v == 0.0)
    assert 0.25 < zeros / len(values) < 0.35
    assert all(v == 0.0 or 1e-5 <= v <= 1e-3 for v in values)


def test_int_uniform_covers_end_points_evenly() -> None:
    hp = Hyperparameter(flag="--e", type="int", default=1, range=(1, 4))
    rng = random.Random(0)
    counts = {v: 0 for v in range(1, 5)}
    for _ in range(4000):
        counts[int(sample_value(hp, rng))] += 1
    assert all(850 < c < 1150 for c in counts.values()), counts


def test_log_uniform_is_uniform_in_log_space() -> None:
    hp = Hyperparameter(
        flag="--lr", type="float", default=0.01, range=(1e-4, 1.0), distribution="log_uniform"
    )
    rng = random.Random(0)
    values = [float(sample_value(hp, rng)) for _ in range(4000)]
    below = sum(1 for v in values if v < 1e-2) / len(values)
    assert 0.45 < below < 0.55  # 1e-2 is the geometric midpoint


def test_choice_coercion_matches_by_text() -> None:
    hp = Hyperparameter(flag="--b", type="choice", default=32, choices=[16, 32, 64])
    assert coerce_value(hp, "64") == 64 and type(coerce_value(hp, "64")) is int
    with pytest.raises(ValueError, match="not one of"):
        coerce_value(hp, 8)
