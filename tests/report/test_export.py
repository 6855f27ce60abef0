"""``hyperjoule export``: CSV, Parquet and JSONL files that read back with their types."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from report_data import energy_block, record, store

from hyperjoule.records import RunStatus
from hyperjoule.report import ReportError, export_runs, load_runs, read_export, write_runs


def cli(args: list[str]) -> int:
    """Run the real CLI in-process."""
    from hyperjoule.cli import main

    return main(args)


def sample(results: Path) -> Path:
    records = [
        record(
            0,
            hps={"epochs": 3, "lr": 0.01, "opt": "adam", "amp": True, "wd": 0.0},
            metrics={"acc": 0.9},
            energy=energy_block(100.0, 20.0, None),
        ),
        record(
            1,
            hps={"epochs": 5, "lr": 0.1, "opt": "sgd", "amp": False, "wd": 1e-4},
            metrics={"acc": 0.8, "loss": 0.25},
            energy=energy_block(70.5, 10.0, 2.0),
        ),
        record(
            2,
            hps={"epochs": 2, "lr": 1.0, "opt": "sgd, or not", "amp": False, "wd": 0.0},
            status=RunStatus.FAILED,
            energy=energy_block(None, None, None),
        ),
        record(
            3,
            hps={"width": 7},
            target="other",
            model=None,
            metrics={"acc": 0.7},
            mode="parallel",
            energy=energy_block(5.0, attribution="combined"),
            background={"target": "toy", "model": None, "effective": False, "runs": 3},
        ),
    ]
    return store(results, records)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_round_trip_keeps_values_and_types(tmp_path: Path, fmt: str) -> None:
    results = sample(tmp_path / "results")
    runs = load_runs(results)
    out = tmp_path / f"runs.{fmt}"
    assert export_runs(results, out, fmt) == 4
    back = read_export(out)
    pd.testing.assert_frame_equal(back, runs, check_exact=False, rtol=1e-12)


def test_parquet_is_typed_without_help(tmp_path: Path) -> None:
    out = tmp_path / "runs.parquet"
    export_runs(sample(tmp_path / "results"), out, "parquet")
    schema = pq.read_schema(out)
    assert str(schema.field("hp_epochs").type) == "int64"
    assert str(schema.field("hp_amp").type) == "bool"
    assert str(schema.field("energy_total_j").type) == "double"
    assert str(schema.field("started_at").type).startswith("timestamp")


def test_jsonl_and_csv_text(tmp_path: Path) -> None:
    results = sample(tmp_path / "results")
    export_runs(results, tmp_path / "runs.jsonl", "jsonl")
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["energy_cpu_dram_j"] is None  # unmeasured: null, not 0
    assert first["started_at"] == "2025-01-01T00:00:00.000+00:00"
    assert first["hp_epochs"] == 3 and first["hp_amp"] is True
    export_runs(results, tmp_path / "runs.csv", "csv")
    header, row0 = (tmp_path / "runs.csv").read_text().splitlines()[:2]
    assert header.startswith("run_id,study,session,slot_id,target,model,mode,mutated,status")
    assert ",2025-01-01T00:00:00.000+00:00," in row0


def test_export_of_one_study_and_errors(tmp_path: Path) -> None:
    results = sample(tmp_path / "results")
    assert export_runs(results, tmp_path / "a.csv", "csv", study="syn") == 4
    with pytest.raises(ReportError, match="unknown export format 'xlsx'"):
        export_runs(results, tmp_path / "a.xlsx", "xlsx")
    with pytest.raises(ReportError, match="unknown export format"):
        write_runs(load_runs(results), tmp_path / "b.txt", "txt")


def test_cli_export_and_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = sample(tmp_path / "results")
    out = tmp_path / "out" / "runs.parquet"
    code = cli(["export", "--results-dir", str(results), "--format", "parquet", "-o", str(out)])
    assert code == 0
    assert "4 runs, parquet" in capsys.readouterr().out
    assert len(pd.read_parquet(out)) == 4
    code = cli(
        [
            "export",
            "--results-dir",
            str(tmp_path / "empty"),
            "--format",
            "csv",
            "-o",
            str(tmp_path / "x.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no results database" in err
    code = cli(
        [
            "export",
            "--results-dir",
            str(results),
            "--study",
            "nope",
            "--format",
            "csv",
            "-o",
            str(tmp_path / "x.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no runs of study 'nope'; studies here: syn" in err
    assert not (tmp_path / "x.csv").exists()
