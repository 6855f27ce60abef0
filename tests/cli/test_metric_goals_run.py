"""Declared metric goals travel from targets.yaml through real runs into the analyses."""

from __future__ import annotations

import json

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.storage import ResultsStore


def test_declared_goal_reaches_records_and_pareto(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    block = target_block()
    block["metrics"] = {
        "test_accuracy": {"regex": r"Test Accuracy:\s*([0-9.]+)%", "goal": "maximize"},
        "epoch_loss": {"regex": r"loss=([0-9.]+)", "match": "last", "goal": "minimize"},
        "ppl": {"goal": "minimize"},  # structured lines only; this script prints none
    }
    project.write_targets({"toy": block})
    study = project.write_study(
        [{"target": "toy", "model": "small", "mode": "mutation", "mutate": ["epochs"], "runs": 3}]
    )
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 0
    assert "guessed" not in capsys.readouterr().out
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    with ResultsStore(project.results, create=False) as store:
        records = list(store.iter_runs())
    assert len(records) == 3
    for rec in records:
        assert rec.metric_goals == {
            "test_accuracy": "maximize",
            "epoch_loss": "minimize",
            "ppl": "minimize",
        }
        assert rec.run_dir is not None
        on_disk = json.loads((project.results / rec.run_dir / "run.json").read_text())
        assert on_disk["metric_goals"]["epoch_loss"] == "minimize"
    capsys.readouterr()
    code = main(
        [
            "pareto",
            "--results-dir",
            str(project.results),
            "--metric",
            "epoch_loss",
            "--format",
            "json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["goal"] == "minimize" and r["goal_declared"] for r in rows)
    assert {r["run_id"] for r in rows} <= {r.run_id for r in records}


PPL_SCRIPT = """
import argparse, json, time
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, required=True)
a = p.parse_args()
end = time.process_time() + 0.15 * a.epochs   # more epochs: more CPU time, more energy
while time.process_time() < end:
    pass
print("HYPERJOULE_METRICS " + json.dumps({"test_ppl": 200.0 / a.epochs}), flush=True)
"""


def test_minimized_perplexity_front_and_target(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Perplexity falls as energy grows: every run is on the front, none if guessed wrong."""
    (project.root / "lm").mkdir()
    (project.root / "lm" / "main.py").write_text(PPL_SCRIPT)
    project.write_targets(
        {
            "lm": {
                "workdir": "lm",
                "command": ["{python}", "main.py"],
                "hyperparameters": {
                    "epochs": {"flag": "--epochs", "type": "int", "default": 1, "range": [1, 4]}
                },
                "metrics": {"test_ppl": {"goal": "minimize"}},
                "required_metrics": ["test_ppl"],
            }
        }
    )
    study = project.write_study(
        [{"target": "lm", "mode": "mutation", "mutate": ["epochs"], "runs": 3}]
    )
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    capsys.readouterr()
    assert main(["pareto", "--results-dir", str(project.results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3, rows  # a maximize guess would keep only the cheapest run
    assert [r["value"] for r in rows] == sorted((r["value"] for r in rows), reverse=True)
    assert all(r["goal"] == "minimize" and r["goal_declared"] for r in rows)
    report = project.root / "report.html"
    assert main(["report", "--results-dir", str(project.results), "-o", str(report)]) == 0
    html = report.read_text(encoding="utf-8")
    assert "test_ppl &lt;=" in html and "test_ppl ↓" in html
