"""End to end: studies run on real processes and are recorded completely and once."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore


def _records(project: Project) -> list[RunRecord]:
    with ResultsStore(project.results, create=False) as store:
        return list(store.iter_runs())


def _run(project: Project, study: Path, *extra: str) -> int:
    return main(["run", str(study), "--results-dir", str(project.results), *extra])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_study_records_every_run_once(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    study = project.write_study(
        [
            {"target": "toy", "model": "small", "mode": "default", "runs": 2},
            {
                "target": "toy",
                "model": "large",
                "mode": "mutation",
                "mutate": ["epochs", "lr"],
                "runs": 2,
            },
            {
                "target": "toy",
                "model": "small",
                "mode": "mutation",
                "mutate": "all",
                "strategy": "one_at_a_time",
                "runs": 1,
            },
        ]
    )
    assert _run(project, study) == 0
    records = _records(project)
    assert len(records) == 7
    assert all(r.status is RunStatus.SUCCEEDED for r in records), [r.error for r in records]
    assert len({r.run_id for r in records}) == 7
    for r in records:
        assert set(r.hyperparameters) == {"epochs", "lr", "optim"}
        acc = 90.0 + r.hyperparameters["epochs"] * 0.5 + (1.0 if r.model == "large" else 0.0)
        assert r.metrics["test_accuracy"] == pytest.approx(acc + 0.25)  # match: last
        run_dir = Path(r.run_dir or "")
        assert (run_dir / "run.json").is_file() and (run_dir / "attempt-1.log").is_file()
        on_disk = json.loads((run_dir / "run.json").read_text())
        assert on_disk["hyperparameters"] == r.hyperparameters
        assert on_disk["status"] == "succeeded"
        assert "--epochs" in r.command and "--model" in r.command
        # No sensors here: energy is estimated or unavailable, never a silent zero.
        for comp in on_disk["energy"]["components"].values():
            assert comp["method"] in ("counter", "integrated", "estimated", "unavailable")
            if comp["method"] == "unavailable":
                assert comp["energy_j"] is None and comp["reason"]
    summary = list(project.results.glob("s/*/summary.csv"))
    assert len(summary) == 1
    with summary[0].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7
    assert list(rows[0])[:7] == [
        "experiment_id",
        "timestamp",
        "repository",
        "model",
        "training_success",
        "duration_seconds",
        "retries",
    ]

    # A second run of the finished study adds nothing.
    capsys.readouterr()
    assert _run(project, study) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert len(_records(project)) == 7


def test_outcomes_are_classified_and_retried(project: Project) -> None:
    project.write_targets(
        {
            "crash": target_block("crash"),
            "oom": target_block("oom"),
            "quiet": target_block("nometrics"),
            "flaky": target_block("flaky"),
        }
    )
    study = project.write_study(
        [{"target": t, "model": "small"} for t in ("crash", "oom", "quiet", "flaky")],
        defaults={"max_retries": 1},
    )
    assert _run(project, study) == 0  # failed runs are recorded, not fatal
    by_target = {r.target: r for r in _records(project)}
    assert by_target["crash"].status is RunStatus.FAILED and by_target["crash"].exit_code == 3
    assert by_target["oom"].status is RunStatus.OOM and by_target["oom"].attempts == 2
    assert by_target["quiet"].status is RunStatus.METRICS_MISSING
    # By default only out-of-memory is retried: a crash would burn the energy twice.
    assert by_target["crash"].attempts == 1 and by_target["quiet"].attempts == 1
    assert by_target["flaky"].status is RunStatus.FAILED and by_target["flaky"].attempts == 1
    oom_dir = Path(by_target["oom"].run_dir or "")
    assert (oom_dir / "attempt-1.log").is_file() and (oom_dir / "attempt-2.log").is_file()
    assert _run(project, study, "--fail-on-error") == 0  # nothing left to run
    # A study that declares crashes transient retries them.
    project.write_study(
        [{"target": "flaky", "model": "small"}, {"target": "oom", "model": "large"}],
        name="r",
        defaults={"max_retries": 1, "retry_on": ["failed"]},
    )
    assert _run(project, project.root / "r.yaml") == 0
    retried = {r.target: r for r in _records(project) if r.study == "r"}
    assert [a["status"] for a in retried["flaky"].attempt_log] == ["failed", "succeeded"]
    assert retried["oom"].status is RunStatus.OOM and retried["oom"].attempts == 1
    project.write_study([{"target": "crash", "model": "large"}], name="t")
    assert _run(project, project.root / "t.yaml", "--fail-on-error") == 1


def test_timeout_kills_the_whole_process_group(project: Project) -> None:
    project.write_targets({"hang": target_block("hang", timeout_s=1.5)})
    study = project.write_study([{"target": "hang", "model": "small"}])
    assert _run(project, study) == 0
    (record,) = _records(project)
    assert record.status is RunStatus.TIMEOUT
    pids = (Path(record.run_dir or "") / "pids.txt").read_text().split()
    assert len(pids) == 2
    assert not any(_alive(int(p)) for p in pids)


def test_ctrl_c_records_interrupted_and_resume_finishes(project: Project) -> None:
    project.write_targets({"toy": target_block(), "hang": target_block("hang")})
    study = project.write_study(
        [
            {"target": "toy", "model": "small"},
            {"target": "hang", "model": "small"},
            {"target": "toy", "model": "large"},
        ]
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hyperjoule",
            "run",
            str(study),
            "--results-dir",
            str(project.results),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    pid_files: list[Path] = []
    while not pid_files and time.monotonic() < deadline:
        pid_files = list(project.results.glob("s/*/*/pids.txt"))
        time.sleep(0.1)
    assert pid_files, "the hanging run never started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    pids = [int(p) for p in pid_files[0].read_text().split()]
    assert not any(_alive(p) for p in pids)
    statuses = sorted((r.slot_id, r.status.value) for r in _records(project))
    assert statuses == [("e0-1", "succeeded"), ("e1-1", "interrupted")]

    # Resume: the interrupted slot and the one never started run; the finished one does not.
    project.write_targets({"toy": target_block(), "hang": target_block()})
    assert _run(project, study) == 0
    statuses = sorted((r.slot_id, r.status.value) for r in _records(project))
    assert statuses == [
        ("e0-1", "succeeded"),
        ("e1-1", "interrupted"),
        ("e1-1", "succeeded"),
        ("e2-1", "succeeded"),
    ]


def test_runs_command_formats(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    study = project.write_study([{"target": "toy", "model": "small", "runs": 2}])
    assert _run(project, study) == 0
    capsys.readouterr()
    assert main(["runs", "--results-dir", str(project.results), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 2 and data[0]["hyperparameters"]["epochs"] == 2
    assert main(["runs", "--results-dir", str(project.results), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 2 and rows[0]["hp_epochs"] == "2"
    assert main(["runs", "--results-dir", str(project.results)]) == 0
    assert "2 runs" in capsys.readouterr().out


def test_runs_without_results_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--results-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "none" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_plan_prints_runs_and_estimate(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    study = project.write_study(
        [{"target": "toy", "model": "small", "mode": "mutation", "mutate": ["epochs"], "runs": 3}]
    )
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 0
    out = capsys.readouterr().out
    assert "3 planned runs: 0 done, 3 to run" in out and "unknown" in out
    assert not project.results.exists()
    other = project.write_study([{"target": "toy", "model": "small", "runs": 1}], name="warm")
    assert _run(project, other) == 0
    capsys.readouterr()
    assert main(["plan", str(study), "--results-dir", str(project.results)]) == 0
    assert "estimated time:" in capsys.readouterr().out


def test_init_scaffolds_a_runnable_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "new")]) == 0
    assert (tmp_path / "new" / "targets.yaml").is_file()
    assert (
        main(["plan", str(tmp_path / "new" / "study.yaml"), "--results-dir", str(tmp_path / "r")])
        == 0
    )
    assert main(["targets", str(tmp_path / "new" / "targets.yaml")]) == 0
    assert main(["init", str(tmp_path / "new")]) == 2  # never overwrites
    assert os.path.isdir(tmp_path / "new" / "digits")
