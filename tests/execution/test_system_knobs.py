"""The CPU governor a study asks for is set for its runs and always restored."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import Project
from hyperjoule.config import load_study
from hyperjoule.errors import PreflightError
from hyperjoule.execution import run_study
from hyperjoule.records import RunStatus


def _fake_cpus(root: Path, governors: list[str]) -> Path:
    cpu_root = root / "sys" / "devices" / "system" / "cpu"
    for n, gov in enumerate(governors):
        d = cpu_root / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
        (d / "scaling_available_governors").write_text("performance powersave\n")
    return cpu_root


def _governors(cpu_root: Path) -> list[str]:
    return [p.read_text().strip() for p in sorted(cpu_root.glob("cpu*/cpufreq/scaling_governor"))]


def _study(project: Project, cpu_root: Path, **system: object) -> Path:
    # The script prints the governor it ran under, so the test sees the setting applied.
    project.write_targets(
        {
            "gov": {
                "command": ["{python}", "-c", "import sys; print(open(sys.argv[1]).read())"],
                "args": [str(cpu_root / "cpu0" / "cpufreq" / "scaling_governor")],
                "hyperparameters": {},
            }
        }
    )
    return project.write_study(
        [{"target": "gov", "mode": "default", "runs": 2}],
        system={"cpu_governor": "performance", **system},
    )


def test_governor_applied_during_runs_and_restored(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave", "performance"])
    loaded = load_study(_study(project, cpu_root))
    result = run_study(loaded, project.results, cpu_sysfs_root=cpu_root)
    assert [r.status for r in result.records] == [RunStatus.SUCCEEDED] * 2
    for record in result.records:
        log = Path(record.run_dir or "") / "attempt-1.log"
        assert log.read_text().strip() == "performance"
        assert record.provenance["system"] == {
            "applied": {"cpu_governor": "performance"},
            "skipped": [],
        }
    assert _governors(cpu_root) == ["powersave", "performance"]


def test_governor_restored_after_interrupt(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave"])
    loaded = load_study(_study(project, cpu_root))
    stop = threading.Event()
    stop.set()  # as if Ctrl-C came at once
    result = run_study(loaded, project.results, cpu_sysfs_root=cpu_root, stop_event=stop)
    assert result.interrupted
    assert _governors(cpu_root) == ["powersave"]


def test_failed_change_is_rolled_back_and_refused(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave", "powersave"])
    blocked = cpu_root / "cpu1" / "cpufreq" / "scaling_governor"
    blocked.unlink()
    blocked.mkdir()  # writing it fails like a read-only sysfs file would
    loaded = load_study(_study(project, cpu_root))
    with pytest.raises(PreflightError, match="cannot set the CPU governor"):
        run_study(loaded, project.results, cpu_sysfs_root=cpu_root)
    assert (cpu_root / "cpu0" / "cpufreq" / "scaling_governor").read_text().strip() == "powersave"


def test_study_may_continue_without_the_setting(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave", "powersave"])
    blocked = cpu_root / "cpu1" / "cpufreq" / "scaling_governor"
    blocked.unlink()
    blocked.mkdir()
    loaded = load_study(_study(project, cpu_root, continue_without_permission=True))
    result = run_study(loaded, project.results, cpu_sysfs_root=cpu_root)
    assert all(r.status is RunStatus.SUCCEEDED for r in result.records)
    skipped = result.records[0].provenance["system"]["skipped"]
    assert skipped and "cannot set the CPU governor" in skipped[0]


def test_unknown_governor_is_refused(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave"])
    path = _study(project, cpu_root)
    path.write_text(path.read_text().replace("cpu_governor: performance", "cpu_governor: turbo"))
    with pytest.raises(PreflightError, match="not available here"):
        run_study(load_study(path), project.results, cpu_sysfs_root=cpu_root)
    assert not project.results.exists()


def test_governor_restored_when_the_runner_is_killed(project: Project, tmp_path: Path) -> None:
    cpu_root = _fake_cpus(tmp_path, ["powersave", "powersave"])
    study = _study(project, cpu_root)
    # A long run, so the runner is surely mid-study when it is killed.
    path = project.root / "targets.yaml"
    path.write_text(
        path.read_text().replace(
            "print(open(sys.argv[1]).read())",
            "import time; print(open(sys.argv[1]).read()); time.sleep(60)",
        )
    )
    code = (
        "import sys; from pathlib import Path\n"
        "from hyperjoule.config import load_study\n"
        "from hyperjoule.execution import run_study\n"
        "study, results, cpus = (Path(a) for a in sys.argv[1:])\n"
        "run_study(load_study(study), results, cpu_sysfs_root=cpus)\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", code, str(study), str(project.results), str(cpu_root)]
    )
    try:
        deadline = time.monotonic() + 30
        while _governors(cpu_root) != ["performance", "performance"]:
            assert time.monotonic() < deadline, "the study never set the governor"
            time.sleep(0.05)
        time.sleep(0.3)
        runner.kill()  # SIGKILL: no finally block of the runner runs
        runner.wait(timeout=10)
        while _governors(cpu_root) != ["powersave", "powersave"]:
            assert time.monotonic() < deadline + 10, "the watchdog did not restore the governor"
            time.sleep(0.05)
    finally:
        if runner.poll() is None:
            runner.kill()
