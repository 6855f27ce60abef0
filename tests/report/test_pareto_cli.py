"""``hyperjoule pareto`` and declared metric goals, through the CLI on real databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from report_data import energy_block, record, store

from hyperjoule.cli import main
from hyperjoule.records import RunRecord

# (energy J, score): "score_x" is declared minimize; its name would be guessed maximize.
POINTS = [(100.0, 50.0), (200.0, 40.0), (300.0, 45.0), (400.0, 30.0), (150.0, 60.0)]
MIN_FRONT = ["r000000", "r000001", "r000003"]  # lower score for more energy
MAX_FRONT = ["r000000", "r000004"]  # what a wrong (maximize) guess would give


def _records(*, declared: bool = True) -> list[RunRecord]:
    out = []
    for i, (energy_j, score) in enumerate(POINTS):
        rec = record(
            i,
            hps={"epochs": i + 1, "lr": 0.01 * (i + 1)},
            metrics={"score_x": score},
            energy=energy_block(energy_j * 0.8, pkg_j=energy_j * 0.2),
        )
        if declared:
            rec.metric_goals = {"score_x": "minimize"}
        out.append(rec)
    return out


def _pareto(results: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["pareto", "--results-dir", str(results), *extra])
    return code, capsys.readouterr().out


def test_json_front_follows_the_declared_goal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "results", _records())
    code, out = _pareto(results, capsys, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == MIN_FRONT
    first = rows[0]
    for key in ("target", "model", "metric", "goal", "value", "energy_j", "energy_method"):
        assert key in first
    assert first["goal"] == "minimize" and first["goal_declared"] is True
    assert (first["target"], first["model"], first["metric"]) == ("toy", "small", "score_x")
    assert first["value"] == 50.0 and first["energy_j"] == pytest.approx(100.0)
    assert first["energy_method"] == "counter"
    assert first["hyperparameters"] == {"epochs": 1, "lr": 0.01}


def test_undeclared_goal_is_guessed_and_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "results", _records(declared=False))
    code, out = _pareto(results, capsys, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == MAX_FRONT
    assert all(r["goal"] == "maximize" and r["goal_declared"] is False for r in rows)
    code, out = _pareto(results, capsys)
    assert code == 0
    assert "guessed" in out and "score_x" in out


def test_csv_and_table_and_energy_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "results", _records())
    code, out = _pareto(results, capsys, "--format", "csv", "--energy", "gpu")
    assert code == 0
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["run_id"] for r in rows] == MIN_FRONT
    assert rows[0]["energy"] == "gpu" and float(rows[0]["energy_j"]) == pytest.approx(80.0)
    assert rows[0]["hp_epochs"] == "1" and rows[0]["goal"] == "minimize"
    code, out = _pareto(results, capsys, "--format", "json", "--energy", "cpu")
    assert [r["energy_j"] for r in json.loads(out)] == pytest.approx([20.0, 40.0, 80.0])
    # No idle baseline was measured: there is no net energy, so no front (not a zero).
    capsys.readouterr()
    code = main(["pareto", "--results-dir", str(results), "--format", "json", "--energy", "net"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out) == []
    assert "net energy needs an idle baseline" in captured.err
    code, out = _pareto(results, capsys, "--metric", "score_x")
    assert code == 0
    assert "score_x minimize" in out and "r000003" in out and "r000004" not in out


def test_unknown_metric_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = store(tmp_path / "results", _records())
    code = main(["pareto", "--results-dir", str(results), "--metric", "bleu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "bleu" in err and "score_x" in err


def test_report_uses_the_declared_goal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = store(tmp_path / "results", _records())
    out = tmp_path / "report.html"
    assert main(["report", "--results-dir", str(results), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "score_x ↓" in html  # the front table's header
    assert "score_x: minimize." in html and "guessed from the name" not in html
    # Energy to target: a minimised metric is reached from below.
    assert "score_x &lt;= 45" in html


def test_plan_names_each_guessed_goal_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import Project, target_block

    project = Project(tmp_path)
    block = target_block()
    block["metrics"] = {
        "test_accuracy": {"regex": r"Test Accuracy:\s*([0-9.]+)%"},
        "ppl": {"goal": "minimize"},  # arrives only as a structured line
    }
    block["required_metrics"] = ["test_accuracy", "val_loss"]
    project.write_targets({"toy": block})
    study = project.write_study([{"target": "toy", "model": "small", "runs": 2}])
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "guessed" in x)
    assert "test_accuracy (maximize)" in line and "val_loss (minimize)" in line
    assert "ppl" not in line and out.count("test_accuracy (maximize)") == 1
