"""gpu_power_limit_w as a (searched) hyperparameter, set through a fake NVML, always restored."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

from hyperjoule.cli import main
from hyperjoule.config import SystemSettings
from hyperjoule.execution._power import GpuPowerLimits
from hyperjoule.records import RunSpec
from hyperjoule.storage import ResultsStore
from meters.fake_nvml import FakeGpu, FakeNvml
from search_support import SearchProject, search_experiment, synthetic_target


def _project(tmp_path: Path) -> SearchProject:
    project = SearchProject(tmp_path)
    target = synthetic_target()
    target["hyperparameters"]["gpu_power_limit_w"] = {
        "type": "int",
        "default": 250,
        "range": [150, 300],
    }
    project.write_targets({"synth": target})
    return project


def test_searched_power_limit_is_set_per_run_and_restored(tmp_path: Path) -> None:
    project = _project(tmp_path)
    gpu = FakeGpu(power_limit_mw=320_000)
    nvml = FakeNvml([gpu])
    study = project.write_study(
        [search_experiment(search=["gpu_power_limit_w", "epochs"], trials=4, sampler="random")]
    )
    with mock.patch("hyperjoule.execution._power.load_nvml", return_value=nvml):
        assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    with ResultsStore(project.results, create=False) as store:
        records = list(store.iter_runs())
    assert len(records) == 4
    set_values = []
    for r in records:
        limit = r.hyperparameters["gpu_power_limit_w"]
        assert 150 <= int(limit) <= 300
        assert r.provenance["gpu_power_limit"] == {"limit_w": limit, "applied": True, "gpus": [0]}
        assert not any("power" in part for part in r.command)  # a knob, not a flag
        set_values.append(int(limit) * 1000)
    # Each run: its limit, then the limit from before the study; a permission probe first.
    history = gpu.power_limit_history_mw
    assert history[0] == 320_000  # the probe writes the limit in force
    assert [h for h in history[1:] if h != 320_000] == set_values
    assert gpu.power_limit_mw == 320_000
    assert nvml.references == 0


def test_power_limit_without_permission_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    gpu = FakeGpu(may_set_power_limit=False)
    study = project.write_study(
        [{"target": "synth", "mode": "default", "hyperparameters": {"gpu_power_limit_w": 200}}]
    )
    with mock.patch("hyperjoule.execution._power.load_nvml", return_value=FakeNvml([gpu])):
        assert main(["run", str(study), "--results-dir", str(project.results)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "gpu_power_limit_w: cannot set the GPU power limit" in err
    assert "Insufficient Permissions" in err and "sudo nvidia-smi -pl" in err
    assert "continue_without_permission" in err
    assert not project.results.exists()
    assert gpu.power_limit_history_mw == []


def test_power_limit_outside_the_board_range_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    gpu = FakeGpu(power_limit_range_mw=(200_000, 350_000))
    study = project.write_study([search_experiment(search=["gpu_power_limit_w"], trials=2)])
    with mock.patch("hyperjoule.execution._power.load_nvml", return_value=FakeNvml([gpu])):
        assert main(["run", str(study), "--results-dir", str(project.results)]) == 2
    err = capsys.readouterr().err
    assert "150 W is outside GPU 0's range [200, 350] W" in err
    assert not project.results.exists()


def test_power_knob_with_a_flag_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = SearchProject(tmp_path)
    target = synthetic_target()
    target["hyperparameters"]["gpu_power_limit_w"] = {
        "flag": "--pl",
        "type": "int",
        "default": 250,
    }
    project.write_targets({"synth": target})
    study = project.write_study([search_experiment()])
    assert main(["plan", str(study)]) == 2
    assert "system knob hyperjoule sets itself" in capsys.readouterr().err


def test_limits_register_their_restore_with_the_watchdog() -> None:
    gpu = FakeGpu(power_limit_mw=280_000)
    reaper = mock.Mock()
    limits = GpuPowerLimits(SystemSettings(), nvml=FakeNvml([gpu]), reaper=reaper)
    spec = RunSpec("e0-t1", "s", 0, "t", None, "search", {"gpu_power_limit_w": 200}, (), "k")
    limits.apply(spec, {})
    assert gpu.power_limit_mw == 200_000
    key, argv = reaper.run_on_death.call_args.args
    assert key == "gpu-power-0"
    assert argv[1:] == ["-m", "hyperjoule.execution._power_restore", gpu.uuid, "280.0"]
    limits.close()
    assert gpu.power_limit_mw == 280_000
    reaper.forget_on_death.assert_called_once_with("gpu-power-0")


def test_watchdog_runs_registered_restores_when_the_runner_is_killed(tmp_path: Path) -> None:
    done, forgotten = tmp_path / "restored", tmp_path / "forgotten"
    code = (
        "import os, sys\n"
        "from hyperjoule.execution._reaper import GroupReaper\n"
        "r = GroupReaper(); r.start()\n"
        "w = 'import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])'\n"
        f"r.run_on_death('a', [sys.executable, '-c', w, {str(done)!r}, '280.0'])\n"
        f"r.run_on_death('b', [sys.executable, '-c', w, {str(forgotten)!r}, 'x'])\n"
        "r.forget_on_death('b')\n"
        "os.kill(os.getpid(), 9)\n"
    )
    runner = subprocess.run([sys.executable, "-c", code], check=False)
    assert runner.returncode == -9
    deadline = time.monotonic() + 20
    while not done.exists():
        assert time.monotonic() < deadline, "the watchdog did not run the restore"
        time.sleep(0.05)
    assert done.read_text() == "280.0"
    assert not forgotten.exists()
