"""summary.csv: the lab's column order, empty cells for the unmeasured, appended per run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from hyperjoule.errors import StorageError
from hyperjoule.records import EnergyBlock, EnergyComponent, PowerBlock, RunRecord, RunStatus
from hyperjoule.storage import (
    SUMMARY_BASE_COLUMNS,
    SummaryCsv,
    flat_row,
    summary_columns,
)

LAB_LEADING = [
    "experiment_id",
    "timestamp",
    "repository",
    "model",
    "training_success",
    "duration_seconds",
    "retries",
]
LAB_ENERGY = [
    "energy_cpu_pkg_joules",
    "energy_cpu_ram_joules",
    "energy_cpu_total_joules",
    "energy_gpu_avg_watts",
    "energy_gpu_max_watts",
    "energy_gpu_min_watts",
    "energy_gpu_total_joules",
    "energy_gpu_temp_avg_celsius",
    "energy_gpu_temp_max_celsius",
    "energy_gpu_util_avg_percent",
    "energy_gpu_util_max_percent",
]
OURS = [
    "mode",
    "status",
    "run_id",
    "session",
    "slot_id",
    "mutated",
    "attempts",
    "exit_code",
    "energy_total_joules",
    "energy_attempts_total_joules",
    "energy_gpu_method",
    "energy_cpu_pkg_method",
    "energy_cpu_dram_method",
    "energy_total_method",
    "energy_attribution",
    "background_target",
    "background_model",
    "background_runs",
    "background_effective",
    "error",
    "carbon_co2e_grams",
    "carbon_attempts_co2e_grams",
    "carbon_intensity_grams_per_kwh",
    "carbon_pue",
    "carbon_source",
]


def record(
    run_id: str,
    *,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    energy: EnergyBlock | None = None,
    power: PowerBlock | None = None,
    status: RunStatus = RunStatus.SUCCEEDED,
    attempts: int = 1,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        study="st",
        session="s1",
        slot_id=f"e0-{run_id}",
        target="digits",
        model="cnn",
        mode="mutation",
        hyperparameters=hyperparameters if hyperparameters is not None else {"lr": 0.01},
        mutated=["lr", "epochs"],
        dedup_key="k",
        status=status,
        attempts=attempts,
        exit_code=0,
        started_at="2025-01-01T00:00:00.000+00:00",
        duration_s=12.5,
        metrics=metrics if metrics is not None else {},
        energy=energy or EnergyBlock(),
        power=power or PowerBlock(),
    )


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_base_columns_are_the_lab_order() -> None:
    assert list(SUMMARY_BASE_COLUMNS) == LAB_LEADING + LAB_ENERGY + OURS


def test_column_order_with_dynamic_columns(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    run = record(
        "1",
        hyperparameters={"weight_decay": 0.0, "epochs": 3, "batch_size": 32},
        metrics={"test_accuracy": 0.9, "f1": 0.8},
    )
    SummaryCsv(path).append(run)
    header, rows = read(path)
    assert header == [
        *LAB_LEADING,
        "hyperparam_batch_size",
        "hyperparam_epochs",
        "hyperparam_weight_decay",
        "perf_f1",
        "perf_test_accuracy",
        *LAB_ENERGY,
        *OURS,
    ]
    assert header == summary_columns([run])
    row = rows[0]
    assert row["experiment_id"] == "e0-1" and row["repository"] == "digits"
    assert row["timestamp"] == "2025-01-01T00:00:00.000+00:00"
    assert row["training_success"] == "True" and row["retries"] == "0"
    assert row["hyperparam_weight_decay"] == "0.0"  # a real zero stays zero
    assert row["perf_test_accuracy"] == "0.9" and row["mutated"] == "lr;epochs"


def test_unmeasured_figures_are_empty_never_zero(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    SummaryCsv(path).append(record("1", status=RunStatus.FAILED, attempts=3))
    _, rows = read(path)
    row = rows[0]
    for column in [*LAB_ENERGY, "energy_total_joules", "error"]:
        assert row[column] == "", column
    assert row["energy_gpu_method"] == "unavailable"
    assert row["energy_total_method"] == "unavailable"
    assert row["training_success"] == "False" and row["retries"] == "2"
    assert row["status"] == "failed"


def test_energy_and_power_mapping() -> None:
    energy = EnergyBlock(
        components={
            "gpu": EnergyComponent(energy_j=1000.0, method="counter", devices=["gpu0"]),
            "cpu_pkg": EnergyComponent(energy_j=300.0, method="estimated"),
            "cpu_dram": EnergyComponent.unavailable("no DRAM domain"),
        }
    )
    power = PowerBlock(
        gpu_avg_w=80.0,
        gpu_max_w=120.0,
        gpu_min_w=40.0,
        gpu_temp_avg_c=55.0,
        gpu_temp_max_c=61.0,
        gpu_util_avg_pct=90.0,
        gpu_util_max_pct=100.0,
    )
    row = flat_row(record("1", energy=energy, power=power))
    assert row["energy_cpu_pkg_joules"] == 300.0
    assert row["energy_cpu_ram_joules"] is None
    assert row["energy_cpu_total_joules"] == 300.0  # sum of what is available
    assert row["energy_gpu_total_joules"] == 1000.0
    assert row["energy_gpu_avg_watts"] == 80.0 and row["energy_gpu_min_watts"] == 40.0
    assert row["energy_gpu_temp_max_celsius"] == 61.0
    assert row["energy_gpu_util_avg_percent"] == 90.0
    assert row["energy_total_joules"] == 1300.0
    assert row["energy_total_method"] == "estimated"
    assert row["energy_cpu_dram_method"] == "unavailable"
    assert list(row) == summary_columns([record("1")])  # keys in column order
    both = EnergyBlock(
        components={
            "cpu_pkg": EnergyComponent(energy_j=10.0, method="counter"),
            "cpu_dram": EnergyComponent(energy_j=2.5, method="counter"),
        }
    )
    assert flat_row(record("2", energy=both))["energy_cpu_total_joules"] == 12.5


def test_row_is_on_disk_right_after_append(tmp_path: Path) -> None:
    path = tmp_path / "st" / "s1" / "summary.csv"  # parents are created
    summary = SummaryCsv(path)
    for i in range(3):
        summary.append(record(str(i)))
        _, rows = read(path)
        assert [r["run_id"] for r in rows] == [str(n) for n in range(i + 1)]


def test_new_column_widens_header_and_keeps_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    summary = SummaryCsv(path)
    summary.append(record("1", hyperparameters={"lr": 0.1}, metrics={"acc": 0.5}))
    summary.append(record("2", hyperparameters={"lr": 0.2, "epochs": 4}, metrics={"acc": 0.6}))
    summary.append(record("3", hyperparameters={"lr": 0.3}, metrics={"acc": 0.7, "f1": 0.1}))
    header, rows = read(path)
    assert header[7:11] == ["hyperparam_epochs", "hyperparam_lr", "perf_acc", "perf_f1"]
    assert header[11:] == LAB_ENERGY + OURS
    assert [r["run_id"] for r in rows] == ["1", "2", "3"]
    assert [r["hyperparam_epochs"] for r in rows] == ["", "4", ""]
    assert [r["perf_f1"] for r in rows] == ["", "", "0.1"]
    assert [r["hyperparam_lr"] for r in rows] == ["0.1", "0.2", "0.3"]
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]  # no temp files


def test_reopened_file_keeps_its_header(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    SummaryCsv(path).append(record("1", hyperparameters={"lr": 0.1, "epochs": 2}))
    header_before, _ = read(path)
    resumed = SummaryCsv(path)
    assert resumed.columns == header_before
    resumed.append(record("2", hyperparameters={"lr": 0.2}))  # a subset: no rewrite
    header, rows = read(path)
    assert header == header_before
    assert [(r["run_id"], r["hyperparam_epochs"]) for r in rows] == [("1", "2"), ("2", "")]
    assert path.read_text().count("experiment_id") == 1


def test_incomplete_last_line_is_dropped_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    SummaryCsv(path).append(record("1"))
    with path.open("a") as f:
        f.write("e0-9,2025-01-01,dig")  # a crash mid-append
    SummaryCsv(path).append(record("2"))
    _, rows = read(path)
    assert [r["run_id"] for r in rows] == ["1", "2"]


def test_error_with_newline_stays_one_row(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    failed = record("1", status=RunStatus.FAILED)
    failed.error = 'exit code 1: "boom"\nTraceback, more'
    summary = SummaryCsv(path)
    summary.append(failed)
    summary.append(record("2"))
    _, rows = read(path)
    assert [r["error"] for r in rows] == [failed.error, ""]


def test_foreign_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(StorageError, match="not a hyperjoule summary"):
        SummaryCsv(path)


def test_attempts_total_is_empty_not_zero_without_measured_attempts(tmp_path: Path) -> None:
    run = record("r1", attempts=2)
    run.attempt_log = [
        {"attempt": 1, "status": "failed", "energy_total_j": None, "energy_method": "unavailable"},
        {"attempt": 2, "status": "succeeded", "energy_total_j": 5.0, "energy_method": "counter"},
    ]
    spent = run.attempts_energy
    assert (spent.total_j, spent.method, spent.unmeasured) == (5.0, "counter", 1)
    run.attempt_log = []
    assert run.to_dict()["energy"]["attempts_total_j"] is None
    assert run.to_dict()["energy"]["attempts_unmeasured"] == 2
    path = tmp_path / "summary.csv"
    SummaryCsv(path).append(run)
    _, rows = read(path)
    assert rows[0]["energy_attempts_total_joules"] == ""
