"""Crash safety on real processes: SIGKILL the runner, resume, orphans, two runners, full disk.

Every scenario drives ``hyperjoule run`` as a real subprocess over a real SQLite file and
checks the same invariants afterwards: no training process outlives its runner, the
database passes ``PRAGMA integrity_check``, and after resuming every planned run is
finished exactly once.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore

# Each run starts a worker child (like a data loader) that would sleep for 10 minutes,
# records both pids, "trains" for a while, then kills its worker and prints its metric.
SCRIPT = textwrap.dedent(
    """
    import argparse, os, subprocess, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--fill-mib", type=int, default=0)
    p.add_argument("--daemon", type=int, default=0)
    p.add_argument("--busy-s", type=float, default=0.0)
    a = p.parse_args()
    end = time.process_time() + a.busy_s
    while time.process_time() < end:  # CPU time, so an estimate meter has energy to count
        pass
    daemon_file = os.path.join(os.environ["PIDS_DIR"], f"d{os.getpid()}.daemon")
    if a.daemon and os.fork() == 0:  # a daemon: double fork, setsid, outlives the script
        os.setsid()
        if os.fork() == 0:
            with open(daemon_file + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(daemon_file + ".tmp", daemon_file)  # whole, or not there
            time.sleep(600)
        os._exit(0)
    while a.daemon and not os.path.exists(daemon_file):  # on a loaded machine too
        time.sleep(0.01)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.path.join(os.environ["PIDS_DIR"], f"{os.getpid()}.pids"), "w") as f:
        f.write(f"{os.getpid()} {worker.pid}")
    if a.fill_mib:
        try:
            with open(os.path.join(os.environ["HYPERJOULE_RUN_DIR"], "blob"), "wb") as f:
                for _ in range(a.fill_mib):
                    f.write(b"x" * 2**20)
        except OSError as e:
            print("disk full:", e, flush=True)
    time.sleep(a.seconds)
    worker.kill()
    print(f"Final accuracy={0.5 + a.seed / 1000}", flush=True)
    """
)


class Lab:
    """A project directory with the script, its targets and a study."""

    def __init__(self, root: Path, *, runs: int, seconds: float, cooldown_s: float = 0.0):
        self.root = root
        self.pids = root / "pids"
        self.pids.mkdir(parents=True)
        self.results = root / "results"
        (root / "train.py").write_text(SCRIPT)
        target = {
            "command": ["{python}", "train.py"],
            "env": {"PIDS_DIR": str(self.pids)},
            "timeout_s": 60,
            "hyperparameters": {
                "seed": {"flag": "--seed", "type": "int", "default": 0, "range": [0, 999]},
                "seconds": {"flag": "--seconds", "type": "float", "default": seconds},
                "fill_mib": {"flag": "--fill-mib", "type": "int", "default": 0},
                "daemon": {"flag": "--daemon", "type": "int", "default": 0},
                "busy_s": {"flag": "--busy-s", "type": "float", "default": 0.0},
            },
            "metrics": {"accuracy": {"regex": r"Final accuracy=([0-9.]+)"}},
            "required_metrics": ["accuracy"],
        }
        (root / "targets.yaml").write_text(yaml.safe_dump({"targets": {"job": target}}))
        self.runs = runs
        self.cooldown_s = cooldown_s

    def study(self, name: str = "crash", jobs: int | None = None, **experiment: object) -> Path:
        exp: dict[str, object] = {"target": "job", "mode": "mutation", "mutate": ["seed"]}
        exp["runs"] = self.runs
        exp.update(experiment)
        data = {
            "name": name,
            "targets": "targets.yaml",
            "seed": 3,
            "allow_estimates": True,
            "defaults": {"cooldown_s": self.cooldown_s},
            "experiments": [exp],
        }
        if jobs is not None:
            data["executor"] = {"jobs": jobs}
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def start(self, study: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hyperjoule", "run", str(study)]
            + ["--results-dir", str(self.results)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def training_pids(self) -> list[int]:
        pids: list[int] = []
        for path in [*self.pids.glob("*.pids"), *self.pids.glob("*.daemon")]:
            with contextlib.suppress(ValueError):
                pids += [int(p) for p in path.read_text().split()]
        return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _assert_no_orphans(lab: Lab) -> None:
    deadline = time.monotonic() + 10
    alive = [p for p in lab.training_pids() if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    assert not alive, f"training processes outlived the runner: {alive}"


def _assert_database_intact(lab: Lab) -> None:
    db = lab.results / "hyperjoule.db"
    if not db.exists():
        return
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _finish(lab: Lab, study: Path) -> None:
    """Resume until done, then check every planned run finished exactly once."""
    proc = lab.start(study)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    with ResultsStore(lab.results, create=False) as store:
        records = list(store.iter_runs(study="crash"))
        plan = store.load_plan("crash")
    assert plan is not None
    finished = [r for r in records if r.status.finished]
    assert sorted(r.slot_id for r in finished) == sorted(s.slot_id for s in plan[1])
    assert all(r.status is RunStatus.SUCCEEDED for r in finished)
    assert all(r.status is RunStatus.INTERRUPTED for r in records if not r.status.finished)
    # Every summary.csv line is whole: it parses and has the header's width.
    for summary in lab.results.glob("crash/*/summary.csv"):
        with open(summary, newline="") as f:
            rows = list(csv.reader(f))
        assert all(len(row) == len(rows[0]) for row in rows)


def _wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _finished_count(lab: Lab) -> int:
    if not (lab.results / "hyperjoule.db").exists():
        return 0
    with ResultsStore(lab.results, create=False) as store:
        return sum(1 for r in store.iter_runs() if r.status.finished)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path / "lab", runs=4, seconds=0.6, cooldown_s=0.8)
    yield made
    for pid in made.training_pids():  # never leave a process behind, even on failure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigkill_during_a_run_leaves_no_orphans_and_resumes(lab: Lab) -> None:
    study = lab.study()
    proc = lab.start(study)
    _wait_for(lambda: len(list(lab.pids.glob("*.pids"))) >= 2)  # inside the second run
    _kill(proc)
    _assert_no_orphans(lab)
    _assert_database_intact(lab)
    _finish(lab, study)
    _assert_no_orphans(lab)


@pytest.mark.slow
def test_sigkill_with_two_runs_in_flight_leaves_no_orphans_and_resumes(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=5, seconds=3.0)
    try:
        study = lab.study(jobs=2)
        proc = lab.start(study)
        _wait_for(lambda: len(list(lab.pids.glob("*.pids"))) >= 2)  # two runs in flight
        assert _running_count(lab) == 2
        _kill(proc)
        _assert_no_orphans(lab)
        _assert_database_intact(lab)
        _finish(lab, study)
        _assert_no_orphans(lab)
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_with_two_runs_in_flight_records_both_interrupted(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=4, seconds=5.0)
    try:
        study = lab.study(jobs=2)
        proc = lab.start(study)
        _wait_for(lambda: len(list(lab.pids.glob("*.pids"))) >= 2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()
        _assert_no_orphans(lab)
        with ResultsStore(lab.results, create=False) as store:
            records = list(store.iter_runs(study="crash"))
        assert sorted(r.status.value for r in records) == ["interrupted", "interrupted"]
        _finish(lab, study)
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigkill_between_runs_resumes(lab: Lab) -> None:
    study = lab.study()
    proc = lab.start(study)
    _wait_for(lambda: _finished_count(lab) >= 1)  # first run recorded: now in cooldown
    _kill(proc)
    _assert_no_orphans(lab)
    _assert_database_intact(lab)
    _finish(lab, study)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_database_write(lab: Lab) -> None:
    # Hold the database's write lock while a run ends: the runner blocks inside its
    # write of the final record, and is killed there.
    study = lab.study()
    proc = lab.start(study)
    _wait_for(lambda: (lab.results / "hyperjoule.db").exists() and _running_count(lab) == 1)
    blocker = sqlite3.connect(lab.results / "hyperjoule.db", timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        logs = lambda: list(lab.results.glob("crash/*/*/attempt-1.log"))  # noqa: E731
        _wait_for(lambda: any("Final accuracy" in p.read_text() for p in logs()))
        time.sleep(0.5)  # the runner now waits for the lock inside update_run
        assert proc.poll() is None
        _kill(proc)
    finally:
        blocker.rollback()
        blocker.close()
    _assert_no_orphans(lab)
    _assert_database_intact(lab)
    _finish(lab, study)


def _running_count(lab: Lab) -> int:
    conn = sqlite3.connect(lab.results / "hyperjoule.db", timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # tables not created yet
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(6))
def test_sigkill_at_random_moments_including_writes(tmp_path: Path, repetition: int) -> None:
    # Short runs without cooldown: most of the runner's time goes to starting, recording
    # and writing, so random kill moments land in the middle of writes.
    lab = Lab(tmp_path / "lab", runs=4, seconds=0.05)
    study = lab.study()
    rng = random.Random(repetition)
    try:
        for _ in range(3):
            proc = lab.start(study)
            time.sleep(rng.uniform(0.3, 2.5))
            if proc.poll() is None:
                _kill(proc)
            else:
                assert proc.stderr is not None
                proc.stderr.close()
            _assert_no_orphans(lab)
            _assert_database_intact(lab)
        _finish(lab, study)
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_second_runner_of_the_same_study_is_refused(lab: Lab) -> None:
    study = lab.study()
    first = lab.start(study)
    _wait_for(lambda: len(list(lab.pids.glob("*.pids"))) >= 1)
    second = lab.start(study)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2
    assert "already running" in err.decode() and "Traceback" not in err.decode()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    _finish(lab, study)


def test_two_studies_started_together_never_plan_the_same_configuration(lab: Lab) -> None:
    lab.cooldown_s = 0.0
    first, second = lab.study("crash"), lab.study("other", runs=3)
    procs = [lab.start(first), lab.start(second)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    _assert_database_intact(lab)
    with ResultsStore(lab.results, create=False) as store:
        crash = {r.dedup_key for r in store.iter_runs(study="crash")}
        other = {r.dedup_key for r in store.iter_runs(study="other")}
    assert len(crash) == 4 and len(other) == 3
    # Same seed, same experiment: alone each would plan the same configurations; planned
    # together, the second planner sees the first's reservation and picks others.
    assert not crash & other, "two concurrent studies measured the same configuration"


@contextlib.contextmanager
def _small_filesystem(path: Path, size_mib: int) -> Iterator[None]:
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root and mount rights)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_results_disk_is_refused_before_training(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=2, seconds=0.05)
    with _small_filesystem(lab.results, 8):
        proc = lab.start(lab.study())
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert "MiB free" in err.decode() and len(err.decode().strip().splitlines()) == 1
        assert not list(lab.pids.glob("*.pids")), "no training may start"


def test_disk_filling_mid_study_stops_with_database_intact(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=3, seconds=0.05)
    with _small_filesystem(lab.results, 80):
        # The second configuration fills the disk from inside the run directory.
        study = lab.study(
            mode="default",
            runs=1,
        )
        data = yaml.safe_load(study.read_text())
        data["experiments"] = [
            {"target": "job", "mode": "default", "runs": 1},
            {"target": "job", "mode": "mutation", "mutate": ["fill_mib"], "runs": 1},
            {"target": "job", "mode": "mutation", "mutate": ["seed"], "runs": 1},
        ]
        targets = yaml.safe_load((lab.root / "targets.yaml").read_text())
        targets["targets"]["job"]["hyperparameters"]["fill_mib"]["range"] = [200, 300]
        (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
        study.write_text(yaml.safe_dump(data))
        proc = lab.start(study)
        _, err = proc.communicate(timeout=120)
        message = err.decode()
        assert proc.returncode == 2, message
        assert "Traceback" not in message
        assert "free space" in message and len(message.strip().splitlines()) <= 3, message
        _assert_no_orphans(lab)
        _assert_database_intact(lab)
        with ResultsStore(lab.results, create=False) as store:
            records = list(store.iter_runs())
        assert records[0].status is RunStatus.SUCCEEDED
        assert len(records) == 2, "the study stops at the run that filled the disk"


def test_sighup_stops_like_sigterm(tmp_path: Path) -> None:
    # The terminal or SSH session went away: the run in flight is recorded, exit 130.
    lab = Lab(tmp_path / "lab", runs=2, seconds=30.0)
    study = lab.study()
    proc = lab.start(study)
    try:
        _wait_for(lambda: len(list(lab.pids.glob("*.pids"))) >= 1)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        _assert_no_orphans(lab)
        with ResultsStore(lab.results, create=False) as store:
            records = list(store.iter_runs(study="crash"))
        assert [r.status for r in records] == [RunStatus.INTERRUPTED]
        assert records[0].duration_s is not None and records[0].attempts == 1
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_daemons_are_killed_at_run_end_and_after_sigkill_of_the_runner(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=1, seconds=0.3)
    targets = yaml.safe_load((lab.root / "targets.yaml").read_text())
    targets["targets"]["job"]["hyperparameters"]["daemon"]["default"] = 1
    (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
    try:
        # Run end: the daemon is killed and reported in the record.
        proc = lab.start(lab.study("daemons"))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        _assert_no_orphans(lab)
        with ResultsStore(lab.results, create=False) as store:
            (record,) = store.iter_runs(study="daemons")
        daemon = int(next(lab.pids.glob("*.daemon")).read_text())
        assert [e["pid"] for e in record.escaped_processes] == [daemon]
        assert record.escaped_processes[0]["found_by"] in ("run_token", "reparented")
        # SIGKILL of the runner: the watchdog finds the daemon by the runner's token.
        for path in lab.pids.iterdir():
            path.unlink()
        targets["targets"]["job"]["hyperparameters"]["seconds"]["default"] = 30.0
        (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
        proc = lab.start(lab.study("crash"))
        _wait_for(lambda: len(list(lab.pids.glob("*.daemon"))) >= 1)
        _kill(proc)
        _assert_no_orphans(lab)
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _checkpointed_s(lab: Lab) -> float:
    if not (lab.results / "hyperjoule.db").exists():
        return 0.0
    conn = sqlite3.connect(lab.results / "hyperjoule.db", timeout=30)
    try:
        row = conn.execute(
            # The least advanced of the runs in flight.
            "SELECT min(coalesce(json_extract(record_json, '$.checkpoint.duration_s'), 0)) "
            "FROM runs WHERE status = 'running'"
        ).fetchone()
    except sqlite3.OperationalError:
        return 0.0  # tables not created yet
    finally:
        conn.close()
    return float(row[0] or 0.0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_mid_attempt_keeps_its_checkpointed_duration_and_energy(
    tmp_path: Path, jobs: int
) -> None:
    # With --jobs 2 the checkpoints come from two attempt threads at once.
    lab = Lab(tmp_path / "lab", runs=jobs, seconds=60.0)
    targets_path = lab.root / "targets.yaml"
    targets = yaml.safe_load(targets_path.read_text())
    targets["targets"]["job"]["hyperparameters"]["busy_s"]["default"] = 3.0
    targets_path.write_text(yaml.safe_dump(targets))
    study = lab.study(jobs=jobs)
    proc = lab.start(study)
    try:
        started = time.monotonic()
        _wait_for(lambda: _checkpointed_s(lab) >= 3.5)  # a checkpoint after the busy part
        _kill(proc)
        killed_after_s = time.monotonic() - started
        _assert_no_orphans(lab)
        # Resume (with quick runs): the stale record becomes interrupted with the figures
        # of its last checkpoint instead of nothing.
        targets["targets"]["job"]["hyperparameters"]["seconds"]["default"] = 0.05
        targets["targets"]["job"]["hyperparameters"]["busy_s"]["default"] = 0.0
        targets_path.write_text(yaml.safe_dump(targets))
        rerun = lab.start(study)
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err.decode()
        with ResultsStore(lab.results, create=False) as store:
            killed = [r for r in store.iter_runs(study="crash") if not r.status.finished]
        assert len(killed) == jobs
        for record in killed:
            _assert_checkpointed(record, killed_after_s)
            # Its files too: run.json and the killed session's summary.csv row.
            on_disk = json.loads((Path(record.run_dir or "") / "run.json").read_text())
            assert on_disk["status"] == "interrupted" and on_disk["energy"]["partial"] is True
            summary = Path(record.run_dir or "").parent / "summary.csv"
            with open(summary, newline="") as f:
                rows = {r["run_id"]: r for r in csv.DictReader(f)}
            row = rows[record.run_id]
            assert row["status"] == "interrupted"
            assert float(row["energy_attempts_total_joules"]) == pytest.approx(
                record.energy.total_j
            )
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _assert_checkpointed(record: RunRecord, killed_after_s: float) -> None:
    """The interrupted record keeps its last checkpoint's figures, counted in the cost."""
    assert record.status is RunStatus.INTERRUPTED and record.attempts == 1
    assert record.duration_s is not None and 3.5 <= record.duration_s <= killed_after_s
    assert record.cpu_time_s is not None and record.cpu_time_s >= 0.5  # busy, 2 shared cores
    assert record.energy.partial is True
    assert record.energy.total_j is not None and record.energy.total_j > 0
    assert record.energy.total_method in ("counter", "integrated", "estimated")
    assert "checkpoint" in (record.error or "")
    (entry,) = record.attempt_log
    assert entry["partial"] is True and entry["status"] == "interrupted"
    assert entry["energy_total_j"] == record.energy.total_j  # counted in the study cost
    assert record.attempts_energy.total_j == record.energy.total_j


def test_daemons_with_two_runs_in_flight_are_each_reported_by_their_own_run(
    tmp_path: Path,
) -> None:
    lab = Lab(tmp_path / "lab", runs=2, seconds=1.0)
    targets = yaml.safe_load((lab.root / "targets.yaml").read_text())
    targets["targets"]["job"]["hyperparameters"]["daemon"]["default"] = 1
    (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
    try:
        proc = lab.start(lab.study("daemons", jobs=2))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        _assert_no_orphans(lab)
        with ResultsStore(lab.results, create=False) as store:
            records = list(store.iter_runs(study="daemons"))
        daemons = {int(p.read_text()) for p in lab.pids.glob("*.daemon")}
        escaped = [r.escaped_processes for r in records]
        assert len(records) == 2 and len(daemons) == 2, (daemons, escaped)
        reported = [[e["pid"] for e in r.escaped_processes] for r in records]
        # Each run reports exactly its own daemon: none is lost, none is claimed twice.
        assert all(len(pids) == 1 for pids in reported), (daemons, escaped)
        assert {pids[0] for pids in reported} == daemons, (daemons, escaped)
        # kill -9 of the runner with both runs (and their daemons) alive: none survives.
        for path in lab.pids.iterdir():
            path.unlink()
        targets["targets"]["job"]["hyperparameters"]["seconds"]["default"] = 30.0
        (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
        proc = lab.start(lab.study("crash", jobs=2))
        _wait_for(lambda: len(list(lab.pids.glob("*.daemon"))) >= 2)
        _kill(proc)
        _assert_no_orphans(lab)
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_in_the_first_second_of_an_attempt_still_counts_the_attempt(
    tmp_path: Path,
) -> None:
    lab = Lab(tmp_path / "lab", runs=1, seconds=60.0)
    study = lab.study()
    proc = lab.start(study)
    try:
        _wait_for(lambda: _checkpointed_s(lab) > 0)  # the first checkpoint, ~0.5 s in
        _kill(proc)
        _assert_no_orphans(lab)
        targets = yaml.safe_load((lab.root / "targets.yaml").read_text())
        targets["targets"]["job"]["hyperparameters"]["seconds"]["default"] = 0.05
        (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
        rerun = lab.start(study)
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err.decode()
        with ResultsStore(lab.results, create=False) as store:
            (killed,) = [r for r in store.iter_runs(study="crash") if not r.status.finished]
        assert killed.status is RunStatus.INTERRUPTED and killed.attempts == 1
        assert killed.duration_s is not None and 0 < killed.duration_s < 2.0
        assert killed.energy.partial is True and len(killed.attempt_log) == 1
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _checkpointed_attempt(lab: Lab) -> int:
    if not (lab.results / "hyperjoule.db").exists():
        return 0
    conn = sqlite3.connect(lab.results / "hyperjoule.db", timeout=30)
    try:
        row = conn.execute(
            "SELECT max(json_extract(record_json, '$.checkpoint.attempt')) FROM runs "
            "WHERE status = 'running'"
        ).fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
    return int(row[0] or 0)


def test_sigkill_during_a_retry_keeps_both_attempts(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", runs=1, seconds=60.0)
    # The first attempt fails at once (a transient error), the retry runs long.
    script = (lab.root / "train.py").read_text()
    (lab.root / "train.py").write_text(
        script.replace(
            "a = p.parse_args()\n",
            "a = p.parse_args()\nif os.environ['HYPERJOULE_ATTEMPT'] == '1':\n"
            "    sum(range(3_000_000)); sys.exit('transient')\n",
        )
    )
    study = lab.study(max_retries=1, retry_on=["failed"])
    proc = lab.start(study)
    try:
        # The retry's checkpoints are stored: the run is `running` again meanwhile.
        _wait_for(lambda: _checkpointed_attempt(lab) == 2)
        _kill(proc)
        _assert_no_orphans(lab)
        (lab.root / "train.py").write_text(script)
        targets = yaml.safe_load((lab.root / "targets.yaml").read_text())
        targets["targets"]["job"]["hyperparameters"]["seconds"]["default"] = 0.05
        (lab.root / "targets.yaml").write_text(yaml.safe_dump(targets))
        rerun = lab.start(study)
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err.decode()
        with ResultsStore(lab.results, create=False) as store:
            records = list(store.iter_runs(study="crash"))
        (killed,) = [r for r in records if not r.status.finished]
        (resumed,) = [r for r in records if r.status.finished]
        assert resumed.status is RunStatus.SUCCEEDED  # the slot ran again on resume
        assert killed.status is RunStatus.INTERRUPTED and killed.attempts == 2
        assert [a["status"] for a in killed.attempt_log] == ["failed", "interrupted"]
        assert killed.attempt_log[1]["partial"] is True
        spent = [a["energy_total_j"] for a in killed.attempt_log]
        assert all(e is not None and e > 0 for e in spent)
        assert killed.attempts_energy.total_j == pytest.approx(sum(spent))
    finally:
        for pid in lab.training_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
