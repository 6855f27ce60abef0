"""``--jobs N``: several runs at once, each with its own logs, metrics and energy."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from hyperjoule.cli import main
from hyperjoule.devices import node_gpus
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore

# Appends when it ran to a shared file, prints its own hyperparameters and metric.
SCRIPT = textwrap.dedent(
    """
    import argparse, os, time
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    a = p.parse_args()
    start = time.time()
    print(f"seed={a.seed} cuda={os.environ.get('CUDA_VISIBLE_DEVICES', '-')}", flush=True)
    time.sleep(a.seconds)
    with open(os.environ["MARKS"], "a") as f:
        f.write(f"{a.seed} {start:.4f} {time.time():.4f}\\n")
    print(f"accuracy={0.5 + a.seed / 10000}", flush=True)
    """
)


def _project(root: Path, runs: int, seconds: float, **study: object) -> Path:
    (root / "train.py").write_text(SCRIPT)
    target = {
        "command": ["{python}", "train.py"],
        "env": {"MARKS": str(root / "marks.txt")},
        "timeout_s": 60,
        "hyperparameters": {
            "seed": {"flag": "--seed", "type": "int", "default": 0, "range": [0, 9999]},
            "seconds": {"flag": "--seconds", "type": "float", "default": seconds},
        },
        "metrics": {"accuracy": {"regex": r"accuracy=([0-9.]+)", "goal": "maximize"}},
        "required_metrics": ["accuracy"],
    }
    (root / "targets.yaml").write_text(yaml.safe_dump({"targets": {"job": target}}))
    data = {
        "name": "par",
        "targets": "targets.yaml",
        "seed": 5,
        "allow_estimates": True,
        "experiments": [{"target": "job", "mode": "mutation", "mutate": ["seed"], "runs": runs}],
        **study,
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(results: Path) -> list[RunRecord]:
    with ResultsStore(results, create=False) as store:
        return list(store.iter_runs(study="par"))


def _max_overlap(marks: Path) -> int:
    events = []
    for line in marks.read_text().splitlines():
        _, start, end = line.split()
        events += [(float(start), 1), (float(end), -1)]
    level = peak = 0
    for _, step in sorted(events):
        level += step
        peak = max(peak, level)
    return peak


def test_jobs_2_runs_two_at_once_and_records_each_once(tmp_path: Path) -> None:
    study = _project(tmp_path, runs=4, seconds=1.0)
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results), "--jobs", "2"]) == 0
    records = _records(results)
    assert len(records) == 4 and len({r.slot_id for r in records}) == 4
    assert all(r.status is RunStatus.SUCCEEDED for r in records)
    assert _max_overlap(tmp_path / "marks.txt") == 2
    for record in records:
        run_dir = Path(record.run_dir or "")
        log = (run_dir / "attempt-1.log").read_text()
        seed = record.hyperparameters["seed"]
        assert f"seed={seed} " in log and log.count("seed=") == 1  # its own log only
        assert record.metrics["accuracy"] == 0.5 + int(seed) / 10000
        assert record.energy.total_j is not None and record.energy.total_j > 0
        assert record.provenance["executor"]["kind"] == "local"
        saved = json.loads((run_dir / "run.json").read_text())
        assert saved["run_id"] == record.run_id and saved["status"] == "succeeded"
    summary = next(results.glob("par/*/summary.csv")).read_text().splitlines()
    assert len(summary) == 1 + 4


def test_executor_jobs_in_the_study_file(tmp_path: Path) -> None:
    study = _project(tmp_path, runs=2, seconds=0.8, executor={"jobs": 2})
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 0
    assert _max_overlap(tmp_path / "marks.txt") == 2
    assert len(_records(results)) == 2


def test_bad_executor_settings_exit_2_and_write_nothing(tmp_path: Path) -> None:
    study = _project(tmp_path, runs=1, seconds=0.1, executor={"jobs": 0})
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 2
    assert not results.exists()
    study = _project(tmp_path, runs=1, seconds=0.1, executor={"gpus_per_run": 1})
    if not node_gpus():
        # No GPU NVML can see here: refused before anything is written.
        assert main(["run", str(study), "--results-dir", str(results)]) == 2
        assert not results.exists()
    assert main(["run", str(study), "--results-dir", str(results), "--jobs", "0"]) == 2


DAEMON_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    out, run_s, daemon = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "daemon"
    if daemon and os.fork() == 0:
        os.setsid()
        if os.fork() == 0:  # a daemon: its own session, reparented to the runner
            with open(out + ".daemon", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
        os._exit(0)
    time.sleep(run_s)
    with open(out + ".done", "w") as f:
        f.write(str(time.time()))
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_run_ending_leaves_the_daemons_of_another_run_in_flight_alone(tmp_path: Path) -> None:
    from hyperjoule.devices import NodeDevices
    from hyperjoule.execution import LocalExecutor
    from hyperjoule.execution._proctree import child_subreaper
    from hyperjoule.meters import FakeMeter
    from hyperjoule.testing.executors import make_task

    (tmp_path / "d.py").write_text(DAEMON_SCRIPT)
    short = make_task(tmp_path)
    long = make_task(tmp_path)
    short = replace(
        short,
        argv=(sys.executable, str(tmp_path / "d.py"), str(tmp_path / "a"), "0.5", "plain"),
        required_metrics=(),
    )
    long = replace(
        long,
        argv=(sys.executable, str(tmp_path / "d.py"), str(tmp_path / "b"), "3", "daemon"),
        required_metrics=(),
    )
    with child_subreaper():
        executor = LocalExecutor(NodeDevices(fixed=[FakeMeter({"gpu": 1.0})]), jobs=2)
        with executor:
            # The short run starts first: the daemon appears while it runs.
            a = executor.submit(short)
            b = executor.submit(long)
            result_a = a.result(timeout=30)
            daemon = int((tmp_path / "b.daemon").read_text())
            assert result_a.escaped_processes == []
            assert _alive(daemon), "the other run's daemon was killed when this run ended"
            result_b = b.result(timeout=30)
    assert not _alive(daemon)
    assert [e["pid"] for e in result_b.escaped_processes] == [daemon]


def test_concurrent_runs_share_a_device_and_count_it_once(tmp_path: Path) -> None:
    from hyperjoule.config import load_study
    from hyperjoule.execution import run_study
    from hyperjoule.meters import FakeMeter

    study = _project(tmp_path, runs=4, seconds=0.8)
    device = FakeMeter({"cpu_pkg": 50.0})  # one CPU package for every run
    result = run_study(load_study(study), tmp_path / "results", meters=[device], jobs=2)
    records = result.records
    assert len(records) == 4
    figures = [r.energy.get("cpu_pkg") for r in records]
    assert any(f.attribution == "apportioned" for f in figures)
    for f in figures:
        if f.attribution == "apportioned":
            assert f.share is not None and 0 <= f.share <= 1 and f.share_basis
    # The runs' figures add up to what the device used while any run was in flight.
    device_j = sum(50.0 * usage.duration_s for usage in device.windows)
    assert sum(f.energy_j or 0.0 for f in figures) == pytest.approx(device_j, rel=1e-9)
    summary = next((tmp_path / "results").glob("par/*/summary.csv")).read_text()
    assert "apportioned" in summary
