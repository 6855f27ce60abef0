"""Pareto fronts on point sets whose front is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hyperjoule.report import metric_direction, pareto_front, pareto_table


def test_known_front_with_ties_and_duplicates() -> None:
    energy = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0]
    acc = [0.50, 0.60, 0.60, 0.55, 0.70, 0.90, 0.90]
    # (2, .6) twice: identical points dominate neither; (4, .7) loses to (4, .9);
    # (5, .9) uses more energy for the same accuracy.
    assert pareto_front(energy, acc).tolist() == [True, True, True, False, False, True, False]


def test_lower_is_better_metric() -> None:
    energy = [1.0, 2.0, 3.0, 4.0]
    loss = [0.9, 0.5, 0.6, 0.1]
    assert pareto_front(energy, loss, maximize=False).tolist() == [True, True, False, True]


def test_missing_values_are_never_on_the_front() -> None:
    energy = [1.0, math.nan, 3.0, 2.0]
    acc = [0.5, 0.99, math.nan, 0.6]
    assert pareto_front(energy, acc).tolist() == [True, False, False, True]
    assert not pareto_front([], []).any()


def test_front_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(3)
    energy = rng.integers(0, 30, 400).astype(float)  # many ties on purpose
    acc = rng.integers(0, 30, 400).astype(float)
    fast = pareto_front(energy, acc)
    for i in range(energy.size):
        dominated = np.any(
            (energy <= energy[i]) & (acc >= acc[i]) & ((energy < energy[i]) | (acc > acc[i]))
        )
        assert fast[i] == (not dominated)


def test_metric_direction_from_name() -> None:
    assert metric_direction("metric_test_accuracy")
    assert metric_direction("mAP")
    assert metric_direction("rank1")
    assert not metric_direction("metric_test_loss")
    assert not metric_direction("val-error")
    assert not metric_direction("train_time_s")


def test_pareto_table_lists_succeeded_front_cheapest_first() -> None:
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d", "e"],
            "target": "t",
            "model": "m",
            "mode": "mutation",
            "status": ["succeeded", "succeeded", "succeeded", "failed", "succeeded"],
            "energy_total_j": [30.0, 10.0, 20.0, 1.0, 40.0],
            "metric_test_accuracy": [0.95, 0.80, 0.90, 0.99, 0.94],
            "hp_epochs": pd.array([3, 1, 2, 9, 4], dtype="Int64"),
            "hp_unused": [math.nan] * 5,
        }
    )
    table = pareto_table(runs, "metric_test_accuracy")
    # d is cheaper and better but failed: failed runs are not candidates.
    assert table["run_id"].tolist() == ["b", "c", "a"]
    assert "hp_epochs" in table.columns and "hp_unused" not in table.columns


@pytest.mark.parametrize("maximize", [True, False])
def test_front_is_monotone(maximize: bool) -> None:
    rng = np.random.default_rng(5)
    energy, metric = rng.random(1000), rng.random(1000)
    front = pareto_front(energy, metric, maximize=maximize)
    order = np.argsort(energy[front])
    values = metric[front][order]
    steps = np.diff(values)
    assert (steps > 0).all() if maximize else (steps < 0).all()
