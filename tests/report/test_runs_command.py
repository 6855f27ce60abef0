"""The researcher's console through the CLI: ``runs`` filters, sort, columns, widths;
``--version``; ``export`` to standard output and its shipped schema document."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from report_data import energy_block, record, store

from hyperjoule.cli import main
from hyperjoule.records import RunStatus
from hyperjoule.report import load_runs


def sample(results: Path) -> Path:
    """Six runs: two targets, three modes, a failure, a missing energy figure."""
    records = [
        record(0, hps={"epochs": 2, "lr": 0.1}, metrics={"acc": 0.80}, mode="default"),
        record(1, hps={"epochs": 7, "lr": 0.1}, energy=energy_block(700.0), metrics={"acc": 0.9}),
        record(
            2, hps={"epochs": 4, "lr": 0.01}, energy=energy_block(400.0), status=RunStatus.FAILED
        ),
        record(
            3, hps={"epochs": 3, "lr": 0.5}, energy=energy_block(None), target="other", model=None
        ),
        record(4, hps={"epochs": 9, "lr": 0.2}, energy=energy_block(900.0), mode="parallel"),
        record(5, hps={"epochs": 1, "lr": 0.3}, energy=energy_block(50.0), model="large"),
    ]
    records[0].mutated = []  # the default run mutates nothing
    records[1].mutated = ["epochs"]
    # One run a day later, for --since.
    records[5].started_at = "2025-01-02T12:00:00.000+00:00"
    return store(results, records)


@pytest.fixture
def results(tmp_path: Path) -> str:
    return str(sample(tmp_path / "results"))


def ids(out: str) -> list[str]:
    return [row["run_id"] for row in csv.DictReader(io.StringIO(out))]


def runs_csv(results: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["runs", "--results-dir", results, "--format", "csv", *args]) == 0
    return ids(capsys.readouterr().out)


def test_filters(results: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert runs_csv(results, capsys, "--status", "failed") == ["r000002"]
    assert runs_csv(results, capsys, "--target", "other") == ["r000003"]
    assert runs_csv(results, capsys, "--model", "large") == ["r000005"]
    assert runs_csv(results, capsys, "--mode", "default,parallel") == ["r000000", "r000004"]
    assert runs_csv(results, capsys, "--mode", "default", "--mode", "parallel") == [
        "r000000",
        "r000004",
    ]
    assert runs_csv(results, capsys, "--since", "2025-01-02") == ["r000005"]
    assert runs_csv(
        results, capsys, "--status", "succeeded", "--target", "toy", "--model", "small"
    ) == [
        "r000000",
        "r000001",
        "r000004",
    ]


def test_since_ago_and_bad_values_exit_2(results: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert runs_csv(results, capsys, "--since", "1d") == []  # the sample is from 2025
    for args in (["--since", "yesterday"], ["--status", "broken"], ["--sort", "nope"]):
        assert main(["runs", "--results-dir", results, *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and args[1] in err


def test_sort_and_limit(results: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Missing energy sorts last either way.
    by_energy = ["r000005", "r000000", "r000002", "r000001", "r000004", "r000003"]
    assert runs_csv(results, capsys, "--sort", "energy_total_j") == by_energy
    descending = ["r000004", "r000001", "r000002", "r000000", "r000005", "r000003"]
    assert runs_csv(results, capsys, "--sort", "-energy_total_j") == descending
    assert runs_csv(results, capsys, "--sort", "energy_total_j", "--desc") == descending
    # Hyperparameters and metrics by their own names.
    assert runs_csv(results, capsys, "--sort", "epochs", "--limit", "2") == ["r000005", "r000000"]
    assert runs_csv(results, capsys, "--sort=-acc", "--limit", "1") == ["r000001"]
    assert main(["runs", "--results-dir", results, "--sort", "-epochs", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "r000004" in out and "1 of 6 runs" in out
    assert main(["runs", "--results-dir", results, "--format", "json", "--sort", "-lr"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data][:2] == ["r000003", "r000005"]
    assert data[0]["hyperparameters"] == {"epochs": 3, "lr": 0.5}  # full records, as before


def test_csv_has_the_export_columns(
    results: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["runs", "--results-dir", results, "--format", "csv"]) == 0
    runs_text = capsys.readouterr().out
    out = tmp_path / "x.csv"
    assert main(["export", "--results-dir", results, "--format", "csv", "-o", str(out)]) == 0
    assert runs_text == out.read_text(encoding="utf-8")
    assert next(csv.reader(io.StringIO(runs_text))) == list(load_runs(results).columns)


def table(results: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["runs", "--results-dir", results, *args]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("width", [80, 200])
def test_table_fits_the_terminal_without_wrapping(
    results: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    lines = table(results, capsys)
    rows = [line for line in lines if line.startswith("r0000")]
    assert len(rows) == 6  # one line per run: nothing wrapped onto a second line
    body = lines[
        : lines.index(next(line for line in lines if line.endswith("runs") or "runs;" in line))
    ]
    assert all(len(line) <= width for line in body)
    header = lines[0]
    for always in ("run_id", "target/model", "status", "energy"):
        assert always in header
    if width == 200:
        # Every mutated hyperparameter is a column; a default value is shown in brackets.
        assert "epochs" in header and "lr" in header and "metrics" in header
        first = next(r for r in rows if r.startswith("r000001"))
        assert "(0.1)" in first and " 7 " in first
        assert "not shown" not in lines[-1]
    else:
        assert "not shown at this width" in lines[-1]


def test_long_cells_end_in_an_ellipsis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_target = "a-target-name-far-longer-than-any-terminal-column-" * 3
    results = str(store(tmp_path / "r", [record(0, hps={"x": 1}, target=long_target)]))
    monkeypatch.setenv("COLUMNS", "80")
    lines = table(results, capsys)
    row = next(line for line in lines if line.startswith("r000000"))
    assert "…" in row and len(row) <= 80 and long_target not in row


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hyperjoule {version('hyperjoule')}"


def test_export_to_stdout(results: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = tmp_path / "runs.jsonl"
    assert main(["export", "--results-dir", results, "--format", "jsonl", "-o", str(file)]) == 0
    capsys.readouterr()
    assert main(["export", "--results-dir", results, "--format", "jsonl", "-o", "-"]) == 0
    assert capsys.readouterr().out == file.read_text(encoding="utf-8")
    # Without -o, csv goes to standard output when it is not a terminal (here: captured).
    assert main(["export", "--results-dir", results, "--format", "csv"]) == 0
    assert len(ids(capsys.readouterr().out)) == 6


def test_parquet_needs_a_file(
    results: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["export", "--results-dir", results, "--format", "parquet", "-o", "-"]) == 2
    err = capsys.readouterr().err
    assert "-o runs.parquet" in err and len(err.strip().splitlines()) == 1
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--results-dir", results, "--format", "parquet"]) == 0
    assert f"wrote {tmp_path / 'runs.parquet'}" in capsys.readouterr().out
    assert len(load_runs(results)) == len(
        __import__("pandas").read_parquet(tmp_path / "runs.parquet")
    )


def test_export_schema_document_is_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    assert "hyperjoule export --schema" in " ".join(capsys.readouterr().out.split())
    assert main(["export", "--schema"]) == 0
    doc = capsys.readouterr().out
    # The document names every fixed column the export writes.
    from hyperjoule.report.load._schema import LEADING_COLUMNS, TRAILING_COLUMNS

    def documented(column: str) -> bool:
        generic = re.sub(r"^energy_(gpu|cpu_pkg|cpu_dram|total)_", "energy_<component>_", column)
        return f"`{column}`" in doc or f"`{generic}`" in doc

    assert [c for c in (*LEADING_COLUMNS, *TRAILING_COLUMNS) if not documented(c)] == []


def test_documents_named_to_users_are_shipped() -> None:
    from importlib.resources import files

    for name in ("export-schema.md", "legacy.md"):
        assert files("hyperjoule").joinpath("docs").joinpath(name).is_file()


def test_empty_database_and_unknown_study(
    results: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hyperjoule.storage import ResultsStore

    ResultsStore(tmp_path / "empty").close()
    assert main(["runs", "--results-dir", str(tmp_path / "empty")]) == 0
    assert "0 runs" in capsys.readouterr().out
    assert main(["runs", "--results-dir", results, "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nope" in err and "syn" in err


def test_many_rows_read_whole_records_in_one_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    many = [record(i, hps={"epochs": i % 7}, energy=energy_block(float(i))) for i in range(300)]
    results = str(store(tmp_path / "r", many))
    assert main(["runs", "--results-dir", results, "--format", "json", "--sort", "-epochs"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 300 and [r["hyperparameters"]["epochs"] for r in data[:2]] == [6, 6]
