"""Parallel mode on real processes: supervised backgrounds, effectiveness, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore

# A background job: burns CPU for --seconds (or exits at once), recording its pid.
BURNER = textwrap.dedent(
    """
    import argparse, os, time
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, required=True)
    a = p.parse_args()
    with open(os.path.join(os.environ["PIDS_DIR"], f"{os.getpid()}.pid"), "w") as f:
        f.write(str(os.getpid()))
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        pass
    print("background epoch done", flush=True)
    """
)


def _setup(project: Project, fg_behaviour: str = "ok", fg_sleep: float = 2.0) -> Path:
    pids = project.root / "pids"
    pids.mkdir(exist_ok=True)
    (project.root / "code" / "burner.py").write_text(BURNER)
    burner = {
        "workdir": "code",
        "command": ["{python}", "burner.py"],
        "env": {"PIDS_DIR": str(pids)},
        "hyperparameters": {
            "seconds": {"flag": "--seconds", "type": "float", "default": 60.0, "range": [0, 600]}
        },
    }
    fg = target_block(fg_behaviour, timeout_s=4)
    fg["args"] = [*fg["args"], "--sleep", str(fg_sleep)]  # type: ignore[misc]
    project.write_targets({"toy": fg, "burner": burner})
    return pids


def _parallel(background_seconds: float, **extra: object) -> dict[str, object]:
    return {
        "mode": "parallel",
        "foreground": {"target": "toy", "model": "small", "runs": 1},
        "background": {"target": "burner", "hyperparameters": {"seconds": background_seconds}},
        "warmup_min_s": 0.3,
        "warmup_max_s": 5,
        "load_threshold_pct": 30,
        "min_background_run_s": 1.0,
        **extra,
    }


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _assert_backgrounds_gone(pids: Path) -> None:
    started = [int(p.read_text()) for p in pids.glob("*.pid")]
    assert started, "the background never started"
    deadline = time.monotonic() + 3
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in started if _alive(p)], "a background outlived its run"


def _records(project: Project) -> list[RunRecord]:
    with ResultsStore(project.results, create=False) as store:
        return list(store.iter_runs())


def test_looping_background_is_supervised_and_effective(project: Project) -> None:
    pids = _setup(project)
    study = project.write_study([_parallel(60.0)])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    _assert_backgrounds_gone(pids)
    [record] = _records(project)
    assert record.mode == "parallel" and record.status is RunStatus.SUCCEEDED
    bg = record.background or {}
    assert bg["effective"] is True, bg["reasons"]
    assert bg["target"] == "burner" and bg["hyperparameters"] == {"seconds": 60.0}
    assert bg["runs"]["count"] == 1 and bg["load"]["cpu_util_mean_pct"] > 30
    assert bg["jobs"][0]["runs"]["details"][0]["stopped_by_hyperjoule"] is True
    # Stopped as soon as the foreground ended: the bound is one second.
    assert 0 <= bg["stopped_after_foreground_s"] < 1.0
    for component in record.energy.components.values():
        if component.energy_j is None:
            continue
        if component.method == "estimated":
            # A per-process estimate covers the foreground's own tree only.
            assert component.attribution == "exclusive"
            assert "background.energy" in (component.reason or "")
        else:
            # Device-level figures include the background.
            assert component.attribution == "combined"
    if record.energy.get("cpu_pkg").method == "estimated":
        estimate = bg["energy"]
        assert estimate["method"] == "estimated" and estimate["cpu_pkg_j"] > 0
        assert estimate["cpu_time_s"] > 0 and "background" in estimate["reason"]
    log = Path(record.run_dir or "") / bg["jobs"][0]["runs"]["details"][0]["log"]
    assert log.is_file() and "background epoch" not in log.read_text()  # killed mid-epoch
    assert log.relative_to(Path(record.run_dir or "")).parts[:2] == ("background", "attempt-1")
    summary = next(project.results.glob("s/*/summary.csv")).read_text()
    assert "background_effective" in summary.splitlines()[0]
    assert ",burner," in summary


def test_background_exiting_at_once_is_restarted_and_flagged(project: Project) -> None:
    pids = _setup(project)
    study = project.write_study([_parallel(0.0)])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    _assert_backgrounds_gone(pids)
    [record] = _records(project)
    bg = record.background or {}
    assert bg["effective"] is False
    assert bg["runs"]["count"] >= 2, "a background that ends is restarted"
    assert any("ended within" in r for r in bg["reasons"]), bg["reasons"]
    assert record.status is RunStatus.SUCCEEDED  # flagged, not failed, unless required


def test_short_background_jobs_keeping_the_load_up_are_effective_with_a_note(
    project: Project,
) -> None:
    # 2-second jobs at full CPU: each ends "early", but the measured load decides.
    _setup(project, fg_sleep=3.0)
    # A low threshold: the load a busy loop gets on a shared, loaded machine varies.
    study = project.write_study([_parallel(1.2, min_background_run_s=2.0, load_threshold_pct=5)])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    [record] = _records(project)
    bg = record.background or {}
    assert bg["runs"]["count"] >= 2 and bg["load"]["cpu_util_mean_pct"] > 5
    assert bg["effective"] is True, bg["reasons"]
    assert any("ended within 2 s" in n and "above the threshold" in n for n in bg["notes"])


def test_required_effective_background_fails_the_run(project: Project) -> None:
    _setup(project)
    study = project.write_study([_parallel(0.0, require_effective_background=True)])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    [record] = _records(project)
    assert record.status is RunStatus.FAILED
    assert record.error and record.error.startswith("background not effective")


def test_foreground_timeout_stops_the_background(project: Project) -> None:
    pids = _setup(project, fg_behaviour="hang")
    study = project.write_study([_parallel(60.0)])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    [record] = _records(project)
    assert record.status is RunStatus.TIMEOUT
    assert (record.background or {})["stopped_after_foreground_s"] < 1.0
    _assert_backgrounds_gone(pids)


@pytest.mark.slow
def test_ctrl_c_during_a_parallel_run_leaves_nothing_running(project: Project) -> None:
    pids = _setup(project, fg_sleep=30.0)
    study = project.write_study([_parallel(60.0)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperjoule", "run", str(study)]
        + ["--results-dir", str(project.results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(project.results.glob("s/*/*/attempt-1.log")):
            assert time.monotonic() < deadline, "foreground never started"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    _assert_backgrounds_gone(pids)
    [record] = _records(project)
    assert record.status is RunStatus.INTERRUPTED
    for pid_file in pids.glob("*.pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_ctrl_c_during_the_background_warm_up_launches_no_foreground(project: Project) -> None:
    pids = _setup(project)
    # A warm-up that lasts: the foreground would start only after 20 s.
    study = project.write_study([_parallel(60.0, warmup_min_s=20, warmup_max_s=30)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperjoule", "run", str(study)]
        + ["--results-dir", str(project.results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(pids.glob("*.pid")):
            assert time.monotonic() < deadline, "background never started"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    _assert_backgrounds_gone(pids)
    [record] = _records(project)
    assert record.status is RunStatus.INTERRUPTED
    logs = list(project.results.glob("s/*/*/attempt-1.log"))
    assert all("not started" in log.read_text() for log in logs), [p.read_text() for p in logs]
