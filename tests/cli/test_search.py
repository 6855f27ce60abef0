"""Search mode through the CLI on the fast synthetic target (real processes, real SQLite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperjoule.cli import main
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore
from search_support import SearchProject, search_experiment


def _records(project: SearchProject, study: str | None = None) -> list[RunRecord]:
    with ResultsStore(project.results, create=False) as store:
        return list(store.iter_runs(study=study))


def _run(project: SearchProject, study: Path) -> int:
    return main(["run", str(study), "--results-dir", str(project.results)])


@pytest.mark.parametrize(
    ("sampler", "trials"), [("tpe", 5), ("nsga2", 5), ("random", 5), ("gp", 3)]
)
def test_each_sampler_runs_its_trial_budget(
    tmp_path: Path, sampler: str, trials: int, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study(
        [search_experiment(sampler=sampler, trials=trials, constraints={"test_accuracy": ">= 0.5"})]
    )
    assert _run(project, study) == 0
    out = capsys.readouterr().out
    assert f"search experiments.0: {trials}/{trials} trials" in out
    records = _records(project)
    assert len(records) == trials
    assert all(r.status is RunStatus.SUCCEEDED for r in records), [r.error for r in records]
    assert len({r.dedup_key for r in records}) == trials  # distinct configurations
    assert sorted(r.slot_id for r in records) == sorted(f"e0-t{n}" for n in range(1, trials + 1))
    for r in records:
        assert r.mode == "search"
        assert r.search is not None and r.search["sampler"] == sampler
        assert r.search["objectives"] == {"energy_j": "minimize", "test_accuracy": "maximize"}
        # Each epoch's intermediate point is kept with the record.
        assert [p["epoch"] for p in r.search["intermediate"]] == list(
            range(1, int(r.hyperparameters["epochs"]) + 1)
        )
        assert r.energy.total_j is not None and r.energy.total_j > 0
    # A second run has nothing left: the search is complete.
    assert _run(project, study) == 0
    assert len(_records(project)) == trials


def test_plan_shows_the_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study(
        [
            search_experiment(
                search=["lr", "wd", "optim"],
                objectives=["energy_j", "test_accuracy"],
                constraints={"test_accuracy": ">= 0.9"},
                trials=12,
                sampler="nsga2",
                prune={"metric": "val_accuracy", "pruner": "hyperband", "min_epochs": 2},
            )
        ]
    )
    # Without a declared goal the list form needs a direction for the metric.
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 2
    err = capsys.readouterr().err
    assert "objective 'test_accuracy' has no direction" in err and "maximize" in err
    study = project.write_study(
        [
            search_experiment(
                search=["lr", "wd", "optim"],
                objectives={"energy_j": None, "test_accuracy": "maximize"},
                constraints={"test_accuracy": ">= 0.9"},
                trials=12,
                sampler="nsga2",
                prune={"metric": "val_accuracy", "pruner": "hyperband", "min_epochs": 2},
            )
        ]
    )
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 0
    out = capsys.readouterr().out
    assert "lr" in out and "float [0.001, 1] log" in out
    assert "or 0 (conditional)" in out  # wd's zero_probability
    assert "energy_j (minimize), test_accuracy (maximize)" in out
    assert "constraints: test_accuracy >= 0.9" in out
    assert "sampler: nsga2; trials: 12 (0 done, 12 to run)" in out
    assert "pruning: hyperband on val_accuracy" in out
    assert not project.results.exists()  # plan writes nothing


def test_kill_9_mid_search_resumes_to_exactly_the_budget(tmp_path: Path) -> None:
    project = SearchProject(tmp_path)
    project.write_targets(
        {
            "synth": {
                **__import__("search_support").synthetic_target(),
                "args": ["--work-ms", "1", "--sleep-per-epoch", "0.03"],
            }
        }
    )
    trials = 8
    study = project.write_study([search_experiment(trials=trials, sampler="tpe")])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hyperjoule.cli",
            "run",
            str(study),
            "--results-dir",
            str(project.results),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    done: list[RunRecord] = []
    while time.monotonic() < deadline:
        if (project.results / "hyperjoule.db").exists():
            done = [r for r in _records(project) if r.status.finished]
            if len(done) >= 3:
                break
        time.sleep(0.05)
    assert len(done) >= 3, "the search did not get going"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = {r.run_id for r in _records(project) if r.status.finished}
    assert len(before) < trials, "killed too late to test resuming"
    assert _run(project, study) == 0
    records = _records(project)
    finished = [r for r in records if r.status.finished]
    assert len(finished) == trials
    assert before <= {r.run_id for r in finished}  # earlier trials kept, not rerun
    assert len({r.dedup_key for r in finished}) == trials
    # A run in flight at the kill is kept as interrupted; it is not a trial.
    assert all(r.status is RunStatus.INTERRUPTED for r in records if not r.status.finished)
    assert len({r.slot_id for r in records}) == len(records)


def test_pruning_stops_unpromising_runs_and_keeps_their_energy(tmp_path: Path) -> None:
    project = SearchProject(tmp_path)
    target = __import__("search_support").synthetic_target(
        args=["--work-ms", "1", "--sleep-per-epoch", "0.12"]
    )
    target["hyperparameters"]["epochs"] = {"flag": "--epochs", "type": "int", "default": 6}
    project.write_targets({"synth": target})
    trials = 7
    study = project.write_study(
        [
            search_experiment(
                search=["lr"],
                trials=trials,
                sampler="random",
                prune={"metric": "val_accuracy", "pruner": "median", "min_epochs": 2},
            )
        ]
    )
    assert _run(project, study) == 0
    records = _records(project)
    assert len(records) == trials  # a pruned run is a trial
    pruned = [r for r in records if r.status is RunStatus.PRUNED]
    assert pruned, [(r.hyperparameters["lr"], r.metrics) for r in records]
    for r in pruned:
        assert r.energy.total_j is not None and r.energy.total_j > 0  # its cost counts
        assert r.search is not None
        epochs = [p["epoch"] for p in r.search["intermediate"]]
        assert 2 <= max(epochs) < 6  # stopped after min_epochs, before the end
        assert r.attempts == 1  # never retried
        assert "pruner" in (r.error or "")
    succeeded = [r for r in records if r.status is RunStatus.SUCCEEDED]
    assert succeeded
    best_pruned = max(r.search["intermediate"][-1]["val_accuracy"] for r in pruned)  # type: ignore[index]
    assert best_pruned < max(r.metrics["test_accuracy"] for r in succeeded)


def test_missing_optuna_is_refused_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study([search_experiment()])
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert _run(project, study) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pip install 'hyperjoule[search]'" in err
    assert not project.results.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"objectives": {"energy_j": "minimize", "tst_accuracy": "maximize"}},
            "unknown objective 'tst_accuracy'",
        ),
        ({"constraints": {"val_loss": "<= 0.3"}}, "constraints.val_loss: constraint on 'val_loss'"),
        ({"trials": 0}, "trials"),
        ({"constraints": {"test_accuracy": "at least 0.9"}}, "is not a comparison"),
        ({"sampler": "cmaes"}, "sampler"),
        ({"runs": 3}, "remove 'runs'"),
        (
            {"search": ["lr", "momentum"]},
            "search.1: target 'synth' has no hyperparameter 'momentum'",
        ),
        ({"objectives": {"energy_j": "lowest"}}, "objectives"),
    ],
)
def test_bad_search_input_is_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, object], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study([search_experiment(**change)])
    assert _run(project, study) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"hyperjoule: error: {study}:"), err
    assert expected in err, err
    assert "Traceback" not in err
    assert not project.results.exists()


def test_pareto_shows_the_front_found_beside_random_mutation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    project = SearchProject(tmp_path)
    mutation = project.write_study(
        [{"target": "synth", "mode": "mutation", "mutate": "all", "runs": 5}], name="m"
    )
    assert _run(project, mutation) == 0
    search = project.write_study(
        [search_experiment(trials=5, constraints={"test_accuracy": ">= 0.3"})], name="s"
    )
    assert _run(project, search) == 0
    capsys.readouterr()
    args = ["pareto", "--search", "--results-dir", str(project.results)]
    assert main([*args, "--format", "json"]) == 0
    fronts = json.loads(capsys.readouterr().out)
    assert len(fronts) == 1
    front = fronts[0]
    assert front["study"] == "s" and front["trials"] == 5 and front["sampler"] == "tpe"
    assert front["estimated"] == any(
        row["methods"]["energy_j"] == "estimated" for row in front["front"]
    )
    records = {r.run_id: r for r in _records(project, "s")}
    points = [
        (r.energy.total_j, r.metrics["test_accuracy"])
        for r in records.values()
        if r.status is RunStatus.SUCCEEDED and r.metrics["test_accuracy"] >= 0.3
    ]
    assert front["front"], "no feasible trial on the front"
    for row in front["front"]:
        e, acc = row["values"]["energy_j"], row["values"]["test_accuracy"]
        assert acc >= 0.3
        assert not any(pe <= e and pa >= acc and (pe < e or pa > acc) for pe, pa in points)
    curve = front["hypervolume"]
    assert len(curve) == 5 and all(b >= a for a, b in zip(curve, curve[1:], strict=False))
    assert front["random"]["studies"] == ["m"] and front["random"]["runs"] == 5
    assert len(front["random"]["hypervolume"]) == 5
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "search s experiments.0" in out and "random mutation of the same target (m)" in out
    report = tmp_path / "report.html"
    assert main(["report", "--results-dir", str(project.results), "-o", str(report)]) == 0
    html = report.read_text()
    assert "Energy-aware search: the fronts found" in html
    assert "random mutation (m)" in html
    assert "Hypervolume over trials" in html and "data:image/png" in html
    for row in front["front"]:
        assert row["run_id"] in html


def test_search_after_planned_runs_warm_starts_from_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study(
        [
            {"target": "synth", "mode": "default", "runs": 1},
            {"target": "synth", "mode": "mutation", "mutate": ["lr"], "runs": 2},
            search_experiment(search=["lr", "epochs"], trials=3, warm_start=True),
        ]
    )
    assert main(["-v", "run", str(study), "--results-dir", str(project.results)]) == 0
    captured = capsys.readouterr()
    assert "3 to run, 3 search trial(s) to run" in captured.out
    assert "search experiments.2: warm start from 3 recorded run(s)" in captured.err
    records = _records(project)
    assert [r.mode for r in records] == ["default", "mutation", "mutation"] + ["search"] * 3
    assert [r.slot_id for r in records[3:]] == ["e2-t1", "e2-t2", "e2-t3"]
    searched = {(r.hyperparameters["lr"], r.hyperparameters["epochs"]) for r in records[3:]}
    planned = {(r.hyperparameters["lr"], r.hyperparameters["epochs"]) for r in records[:3]}
    assert len(searched) == 3 and not searched & planned  # new configurations only


def test_jobs_2_keeps_two_trials_in_flight(tmp_path: Path) -> None:
    from datetime import datetime

    project = SearchProject(tmp_path)
    target = __import__("search_support").synthetic_target(
        args=["--work-ms", "1", "--sleep-per-epoch", "0.15"]
    )
    target["hyperparameters"]["epochs"] = {"flag": "--epochs", "type": "int", "default": 3}
    project.write_targets({"synth": target})
    trials = 6
    study = project.write_study([search_experiment(search=["lr", "width"], trials=trials)])
    assert main(["run", str(study), "--results-dir", str(project.results), "--jobs", "2"]) == 0
    records = _records(project)
    assert len(records) == trials and all(r.status is RunStatus.SUCCEEDED for r in records)
    assert len({r.dedup_key for r in records}) == trials  # constant liar: no twin proposals
    spans = [
        (datetime.fromisoformat(r.started_at or ""), datetime.fromisoformat(r.ended_at or ""))
        for r in records
    ]
    overlaps = [
        sum(1 for s2, e2 in spans if s2 < end and start < e2) for start, end in spans
    ]  # each run overlaps itself once
    assert max(overlaps) >= 2, "no two trials ever ran at once"
    assert all(sum(1 for s, e in spans if s <= moment < e) <= 2 for moment, _ in spans), (
        "more than two trials at once"
    )


def test_search_keeps_trials_in_flight_with_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    study = project.write_study([search_experiment(sampler="tpe", trials=4)])
    assert main(["run", str(study), "--results-dir", str(project.results), "--jobs", "2"]) == 0
    assert "search experiments.0: 4/4 trials" in capsys.readouterr().out
    records = _records(project)
    assert sorted(r.slot_id for r in records) == [f"e0-t{n}" for n in range(1, 5)]
    assert len({r.dedup_key for r in records}) == 4  # trials in flight never repeat
    assert all(r.status is RunStatus.SUCCEEDED for r in records)
    # Trials overlapped: a later trial started before an earlier one was recorded.
    spans = sorted((r.started_at or "", r.ended_at or "") for r in records)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
