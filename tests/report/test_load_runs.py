"""``load_runs``: the flat schema read from a real results database."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from report_data import energy_block, epochs_study, record, store

from hyperjoule.errors import StorageError
from hyperjoule.records import PowerBlock, RunStatus
from hyperjoule.report import (
    LEADING_COLUMNS,
    TRAILING_COLUMNS,
    load_attempts,
    load_runs,
    load_tables,
    runs_frame,
)
from hyperjoule.report._pool import FigurePool
from hyperjoule.storage import ResultsStore


def mixed_records() -> list:
    retried = [
        {
            "attempt": 1,
            "status": "failed",
            "exit_code": 1,
            "duration_s": 4.0,
            "cpu_time_s": 3.0,
            "energy_total_j": 40.0,
            "energy_method": "counter",
        },
        {
            "attempt": 2,
            "status": "failed",
            "exit_code": 1,
            "duration_s": 5.0,
            "cpu_time_s": 3.0,
            "energy_total_j": None,
            "energy_method": "unavailable",
        },
        {
            "attempt": 3,
            "status": "failed",
            "exit_code": 1,
            "duration_s": 6.0,
            "cpu_time_s": 3.0,
            "energy_total_j": 60.0,
            "energy_method": "counter",
        },
        {
            "attempt": 4,
            "status": "succeeded",
            "exit_code": 0,
            "duration_s": 7.0,
            "cpu_time_s": 3.0,
            "energy_total_j": 70.0,
            "energy_method": "counter",
        },
    ]
    return [
        record(
            0,
            hps={"epochs": 3, "lr": 0.01, "opt": "adam", "amp": True},
            metrics={"acc": 0.9},
            energy=energy_block(100.0, 20.0, None),
        ),
        record(
            1,
            hps={"epochs": 5, "lr": 0.1, "opt": "sgd", "amp": False},
            metrics={"acc": 0.8, "loss": 0.3},
            energy=energy_block(70.0, 10.0, 2.0),
            attempt_log=retried,
        ),
        record(
            2,
            hps={"epochs": 2, "lr": 1, "opt": "sgd", "amp": False},
            status=RunStatus.FAILED,
            energy=energy_block(None, None, None),
        ),
        record(
            3,
            hps={"epochs": 4, "lr": 0.2, "opt": "adam", "amp": True},
            mode="parallel",
            metrics={"acc": 0.85},
            energy=energy_block(90.0, 30.0, attribution="combined"),
            background={
                "target": "toy",
                "model": "large",
                "effective": True,
                "runs": [{"exit_code": 0}, {"exit_code": 0}],
            },
            power=PowerBlock(gpu_avg_w=250.0, gpu_max_w=300.0, samples=40),
        ),
        record(
            4, hps={"width": 64}, target="other", model=None, metrics={"acc": 0.7}, study="second"
        ),
    ]


def test_schema_columns_and_types(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, mixed_records()))
    hp = ["hp_amp", "hp_epochs", "hp_lr", "hp_opt", "hp_width"]
    metrics = ["metric_acc", "metric_loss"]
    assert list(runs.columns) == [*LEADING_COLUMNS, *hp, *metrics, *TRAILING_COLUMNS]
    assert runs["run_id"].tolist() == ["r000000", "r000001", "r000002", "r000003", "r000004"]
    dtypes = runs.dtypes.astype(str).to_dict()
    assert dtypes["hp_amp"] == "boolean"
    assert dtypes["hp_epochs"] == "Int64"
    assert dtypes["hp_lr"] == "float64"  # 1 (int) and floats: float
    assert dtypes["hp_opt"] == "str"
    assert dtypes["attempts"] == dtypes["exit_code"] == "Int64"
    assert dtypes["started_at"] == "datetime64[us, UTC]"
    assert dtypes["energy_total_j"] == dtypes["metric_acc"] == "float64"
    assert dtypes["background_effective"] == "boolean"


def test_unmeasured_figures_are_missing_never_zero(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, mixed_records())).set_index("run_id")
    assert math.isnan(runs.loc["r000000", "energy_cpu_dram_j"])
    assert runs.loc["r000000", "energy_cpu_dram_method"] == "unavailable"
    assert "no dram-0 meter" in runs.loc["r000000", "energy_cpu_dram_reason"]
    assert pd.isna(runs.loc["r000000", "energy_cpu_dram_attribution"])
    assert math.isnan(runs.loc["r000002", "energy_total_j"])
    assert runs.loc["r000002", "energy_total_method"] == "unavailable"
    assert math.isnan(runs.loc["r000000", "power_gpu_avg_w"])
    assert runs.loc["r000000", "energy_total_j"] == pytest.approx(120.0)
    assert runs.loc["r000000", "energy_gpu_devices"] == "gpu0"


def test_attempt_totals_include_failed_and_unmeasured_attempts(tmp_path: Path) -> None:
    results = store(tmp_path, mixed_records())
    runs = load_runs(results).set_index("run_id")
    assert runs.loc["r000001", "attempts"] == 4
    assert runs.loc["r000001", "attempts_duration_s"] == pytest.approx(22.0)
    assert runs.loc["r000001", "attempts_energy_total_j"] == pytest.approx(170.0)
    assert runs.loc["r000001", "attempts_energy_missing"] == 1
    attempts = load_attempts(results)
    four = attempts[attempts["run_id"] == "r000001"]
    assert four["attempt"].tolist() == [1, 2, 3, 4]  # more than the 3 read inline
    assert four["status"].tolist() == ["failed", "failed", "failed", "succeeded"]
    assert four["run_status"].unique().tolist() == ["succeeded"]


def test_parallel_runs_carry_background_and_combined_attribution(tmp_path: Path) -> None:
    runs = load_runs(store(tmp_path, mixed_records())).set_index("run_id")
    row = runs.loc["r000003"]
    assert row["mode"] == "parallel"
    assert row["background_target"] == "toy" and row["background_model"] == "large"
    assert bool(row["background_effective"]) and row["background_runs"] == 2
    assert row["energy_gpu_attribution"] == "combined"
    assert row["energy_total_attribution"] == "combined"
    assert row["power_gpu_avg_w"] == 250.0 and row["power_samples"] == 40
    assert runs.loc["r000000", "energy_total_attribution"] == "exclusive"


def test_study_filter_and_errors(tmp_path: Path) -> None:
    results = store(tmp_path, mixed_records())
    assert load_runs(results, study="second")["run_id"].tolist() == ["r000004"]
    with pytest.raises(StorageError, match=r"no runs of study 'nope'; studies here: second, syn"):
        load_runs(results, study="nope")
    with pytest.raises(StorageError, match="no results database"):
        load_runs(tmp_path / "missing")
    ResultsStore(tmp_path / "empty").close()
    with pytest.raises(StorageError, match="no runs recorded yet"):
        load_runs(tmp_path / "empty")


def test_damaged_record_is_a_clear_error(tmp_path: Path) -> None:
    results = store(tmp_path, mixed_records()[:1])
    conn = sqlite3.connect(results / "hyperjoule.db")
    conn.execute("UPDATE runs SET record_json = '{not json'")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="r000000"):
        load_runs(results)


def test_records_and_database_give_the_same_table(tmp_path: Path) -> None:
    records = mixed_records()
    from_db = load_tables(store(tmp_path, records))
    from_dicts = runs_frame([r.to_dict() for r in records])
    pd.testing.assert_frame_equal(from_db.runs, from_dicts.runs)
    pd.testing.assert_frame_equal(from_db.attempts, from_dicts.attempts)


def test_reading_in_parts_with_workers_gives_the_same_table(tmp_path: Path) -> None:
    results = store(tmp_path, [*mixed_records(), *epochs_study(40)[5:]])
    single = load_tables(results)
    with FigurePool(2) as pool:
        parts = load_tables(results, pool=pool)
    pd.testing.assert_frame_equal(single.runs, parts.runs)
    pd.testing.assert_frame_equal(single.attempts, parts.attempts)
