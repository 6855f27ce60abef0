"""Sensitivity and interval statistics on synthetic data with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_data import epochs_study, store

from hyperjoule.report import load_runs, mean_ci, sensitivity, spearman_ci
from hyperjoule.report.analysis._stats import correlation_ratio, ranks, standardised_coefficients


def test_energy_driven_by_epochs_ranks_epochs_first(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, epochs_study(150)))
    result = sensitivity(runs, "energy_total_j")
    table = result.table
    assert table["hyperparameter"].iloc[0] == "epochs"
    first = table.iloc[0]
    assert first["rank_corr_low"] > 0.9  # clearly positive, clearly strongest
    assert first["src_low"] > 0.9
    others = table.iloc[1:]
    # Nothing else moves energy: every other interval contains 0.
    assert ((others["src_low"] < 0) & (others["src_high"] > 0)).all()
    assert set(table["hyperparameter"]) == {"epochs", "lr", "batch_size", "optimizer"}
    assert table.set_index("hyperparameter").loc["lr", "scale"] == "log10"
    assert table.set_index("hyperparameter").loc["optimizer", "kind"] == "choice"
    assert result.warnings == []
    assert result.r2 is not None and result.r2 > 0.95


def test_metric_outcome_and_method_names(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, epochs_study(80, seed=1)))
    result = sensitivity(runs, "metric_test_accuracy")
    assert result.table["hyperparameter"].iloc[0] == "epochs"
    methods = dict(zip(result.table["hyperparameter"], result.table["rank_method"], strict=True))
    assert methods["epochs"].startswith("Spearman")
    assert methods["optimizer"].startswith("correlation ratio")  # three unordered levels


def test_too_few_runs_warns_and_skips(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, epochs_study(3)))
    result = sensitivity(runs)
    assert result.table.empty
    assert any("too few runs" in w for w in result.warnings)
    runs8 = load_runs(store(tmp_path / "b", epochs_study(8)))
    result8 = sensitivity(runs8)
    assert any("only 8 runs" in w for w in result8.warnings)
    # Fewer than 10 runs: a rank correlation but no interval.
    assert result8.table["rank_corr_low"].isna().all()


def test_nothing_varies() -> None:
    runs = pd.DataFrame(
        {"hp_epochs": pd.array([3] * 10, dtype="Int64"), "energy_total_j": np.arange(10.0)}
    )
    result = sensitivity(runs)
    assert result.table.empty
    assert result.warnings == [
        "only 10 runs: the intervals are wide, treat the ranking as a "
        "hint (at least 20 runs recommended)",
        "no hyperparameter varies across these runs",
    ]


def test_collinear_hyperparameters_have_no_regression() -> None:
    x = np.arange(30.0)
    runs = pd.DataFrame({"hp_a": x, "hp_b": 2 * x, "energy_total_j": 3 * x + 1})
    result = sensitivity(runs)
    assert result.r2 is None
    assert any("no regression" in w for w in result.warnings)
    assert result.table["src"].isna().all()
    assert (result.table["rank_corr"] > 0.99).all()


def test_mean_interval_contains_truth_in_easy_cases() -> None:
    rng = np.random.default_rng(11)
    hits = sum(mean_ci(rng.normal(5.0, 2.0, 50)).contains(5.0) for _ in range(200))
    assert 180 <= hits <= 200  # nominal 95 %
    single = mean_ci([4.0])
    assert single.value == 4.0 and math.isnan(single.low)
    assert mean_ci([]).n == 0


def test_spearman_interval_contains_population_value() -> None:
    rho = 0.6
    truth = 6 / math.pi * math.asin(rho / 2)  # Spearman's rho of a bivariate normal
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(100):
        x, y = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], 300).T
        hits += spearman_ci(x, y).contains(truth)
    assert hits >= 88


def test_standardised_coefficients_recover_known_model() -> None:
    rng = np.random.default_rng(2)
    n = 600
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    y = 2.0 * x1 + rng.normal(0, 0.3, n)
    # True SRC of x1: b * sd(x1) / sd(y), with var(x1) = 1/12 and var(y) = 4/12 + 0.09.
    truth = 2.0 * math.sqrt(1 / 12) / math.sqrt(4 / 12 + 0.09)
    fit = standardised_coefficients(np.column_stack([x1, x2]), y)
    assert fit is not None
    assert fit.coefficients[0].contains(truth)
    assert fit.coefficients[1].contains(0.0)
    assert fit.r2 == pytest.approx(truth**2, abs=0.05)


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_correlation_ratio_bounds() -> None:
    codes = np.repeat([0, 1, 2], 50)
    assert correlation_ratio(codes, codes.astype(float)) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert correlation_ratio(codes, rng.random(150)) < 0.25


def test_log_scale_only_for_log_spread_values() -> None:
    from hyperjoule.report.analysis._sensitivity import is_log_scale

    rng = np.random.default_rng(4)
    assert is_log_scale(10 ** rng.uniform(-4, -1, 500))  # a learning rate
    assert not is_log_scale(rng.uniform(0.0001, 0.5, 500))  # dropout: wide ratio, uniform
    assert not is_log_scale(rng.integers(1, 10000, 500).astype(float))  # a seed
    assert not is_log_scale(np.array([0.0, 1e-4, 1e-2, 1e-1]))  # zeros cannot be logged
