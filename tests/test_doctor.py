"""hyperjoule doctor / baseline: sensors, permissions, busy GPUs, visibility, offline."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conftest import Project, target_block
from hyperjoule.cli._doctor import Finding, diagnose, register
from hyperjoule.errors import ConfigError, PreflightError
from hyperjoule.meters import Baseline, MeterConfig, _rapl, load_latest_baseline, save_baseline
from meters.fake_nvml import FakeGpu, FakeNvml, two_gpus
from meters.fake_powercap import FakePowercap

GPU_B = "GPU-bbbb0000-0000-0000-0000-000000000000"  # two_gpus()'s second UUID
NO_SUCH_PID = 2**22 + 1  # above the largest pid_max Linux allows


@pytest.fixture
def no_proc(tmp_path: Path) -> Path:
    """A /proc without the NVIDIA driver (and without processes)."""
    root = tmp_path / "proc"
    root.mkdir()
    return root


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process standing in for an orphan that holds a GPU."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def areas(findings: list[Finding], area: str) -> list[Finding]:
    return [f for f in findings if f.area == area]


def one(findings: list[Finding], area: str) -> Finding:
    found = areas(findings, area)
    assert len(found) == 1, (area, findings)
    return found[0]


def cpu_config(tmp_path: Path) -> MeterConfig:
    return MeterConfig(powercap_root=tmp_path / "no-powercap")


# Sensors and methods ---------------------------------------------------------------------


def test_cpu_machine_without_rapl(tmp_path: Path, no_proc: Path) -> None:
    findings = diagnose(cpu_config(tmp_path), environ={}, nvml=FakeNvml([]), proc_root=no_proc)
    assert one(findings, "sensor nvml").status == "ok"  # no driver: nothing to fix
    assert one(findings, "sensor rapl").status == "warn"
    pkg = one(findings, "energy cpu_pkg")
    assert pkg.status == "warn"
    assert pkg.detail.startswith("estimated")
    assert "cpu_watts_per_core" in pkg.fix
    assert one(findings, "energy gpu").status == "ok"
    assert one(findings, "energy cpu_dram").status == "warn"
    assert not areas(findings, "gpus")
    assert all(f.status != "fail" for f in findings)


def test_driver_without_nvml_is_a_warning(tmp_path: Path, no_proc: Path) -> None:
    (no_proc / "driver" / "nvidia").mkdir(parents=True)
    (no_proc / "driver" / "nvidia" / "version").write_text("NVRM version: 550.54.15\n")
    nvml = FakeNvml([], init_error=9)
    findings = diagnose(cpu_config(tmp_path), environ={}, nvml=nvml, proc_root=no_proc)
    sensor = one(findings, "sensor nvml")
    assert sensor.status == "warn"
    assert "Driver Not Loaded" in sensor.detail
    assert one(findings, "energy gpu").status == "warn"


def test_readable_rapl_and_gpu_counters(tmp_path: Path, no_proc: Path) -> None:
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0)
    config = MeterConfig(powercap_root=powercap.root)
    nvml = FakeNvml([FakeGpu(), FakeGpu(uuid="GPU-b", energy_mj=None)])
    findings = diagnose(config, environ={}, nvml=nvml, proc_root=no_proc)
    assert one(findings, "sensor rapl").status == "ok"
    assert one(findings, "sensor nvml").status == "ok"
    pkg = one(findings, "energy cpu_pkg")
    assert (pkg.status, pkg.detail.split(":")[0]) == ("ok", "counter on package-0")
    assert one(findings, "energy cpu_dram").detail.startswith("counter on package-0:dram")
    gpu = one(findings, "energy gpu")
    # One GPU lacks the energy counter: the whole component is integrated.
    assert gpu.status == "ok"
    assert gpu.detail.startswith("integrated on gpu0 NVIDIA H200, gpu1 NVIDIA H200")
    assert all(f.status != "fail" for f in findings)
    assert nvml.references == 0


def test_unreadable_rapl_counter_fails_with_the_fix(
    tmp_path: Path, no_proc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0)
    denied = powercap.root / "intel-rapl:0" / "energy_uj"
    real = _rapl._read_sysfs

    def read(path: Path) -> str:
        # What a non-root user meets since Linux 5.10 (root reads any mode).
        if path == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(_rapl, "_read_sysfs", read)
    config = MeterConfig(powercap_root=powercap.root)
    findings = diagnose(config, environ={}, nvml=FakeNvml([]), proc_root=no_proc)
    rapl = one(findings, "sensor rapl")
    assert rapl.status == "fail"
    assert str(denied) in rapl.detail
    assert f"sudo chmod o+r {powercap.root}/intel-rapl:*/energy_uj" in rapl.fix
    assert 'SUBSYSTEM=="powercap"' in rapl.fix
    assert "usermod -aG powercap" in rapl.fix
    pkg = one(findings, "energy cpu_pkg")
    assert pkg.status == "warn" and pkg.detail.startswith("estimated")
    assert "RAPL counters readable" in pkg.fix


def test_real_unreadable_counter(tmp_path: Path, no_proc: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files regardless of their mode")
    powercap = FakePowercap(tmp_path / "sys")
    powercap.add_package(0)
    (powercap.zones["0"] / "energy_uj").chmod(0o200)
    config = MeterConfig(powercap_root=powercap.root)
    findings = diagnose(config, environ={}, nvml=FakeNvml([]), proc_root=no_proc)
    assert one(findings, "sensor rapl").status == "fail"


# GPUs in use -----------------------------------------------------------------------------


def test_foreign_process_on_a_measured_gpu_fails(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    nvml = FakeNvml([FakeGpu(pids=[sleeper.pid])])
    findings = diagnose(cpu_config(tmp_path), environ={}, nvml=nvml)
    busy = one(findings, "gpu0 processes")
    assert busy.status == "fail"
    # Named from the real /proc, with its command line and the memory NVML reports.
    assert f"pid {sleeper.pid} sleep [sleep 60], 1024 MiB" in busy.detail
    assert f"kill {sleeper.pid}" in busy.fix
    assert f"ps -o pid,ppid,etime,args -p {sleeper.pid}" in busy.fix
    assert "other processes used the GPU" in one(findings, "energy gpu").detail


def test_process_in_another_pid_namespace(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(pids=[NO_SUCH_PID])])
    busy = one(diagnose(cpu_config(tmp_path), environ={}, nvml=nvml), "gpu0 processes")
    assert busy.status == "fail"
    assert f"pid {NO_SUCH_PID} (not visible here" in busy.detail


def test_own_process_and_idle_gpus_are_ok(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(pids=[os.getpid()])])
    idle = one(diagnose(cpu_config(tmp_path), environ={}, nvml=nvml), "gpu0 processes")
    assert (idle.status, idle.detail) == ("ok", "gpu0: no compute processes")


def test_busy_gpu_that_is_not_measured_warns(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    nvml = two_gpus()
    nvml.gpus[1].pids = [sleeper.pid]
    config = MeterConfig(powercap_root=tmp_path / "none", gpus=[0])
    findings = diagnose(config, environ={}, nvml=nvml)
    assert one(findings, "gpu0 processes").status == "ok"
    other = one(findings, "gpu1 processes")
    assert other.status == "warn"
    assert "not measured" in other.detail and "sleep" in other.detail
    assert one(findings, "gpus").detail.startswith("'gpus: [0]' measures gpu0")


def test_process_listing_failure_is_a_warning(tmp_path: Path) -> None:
    class NoProcessList(FakeNvml):
        def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[object]:  # noqa: N802
            raise self.NVMLError_NotSupported()

    findings = diagnose(cpu_config(tmp_path), environ={}, nvml=NoProcessList([FakeGpu()]))
    listing = one(findings, "gpu0 processes")
    assert listing.status == "warn" and "Not Supported" in listing.detail


# CUDA_VISIBLE_DEVICES ----------------------------------------------------------------------


@pytest.mark.parametrize("visible", ["1", "GPU-bbbb"])
def test_visible_devices_pick_the_measured_gpu(tmp_path: Path, visible: str) -> None:
    env = {"CUDA_VISIBLE_DEVICES": visible}
    gpus = one(diagnose(cpu_config(tmp_path), environ=env, nvml=two_gpus()), "gpus")
    assert gpus.status == "ok"
    assert f"measured gpu1 NVIDIA H200 ({GPU_B})" in gpus.detail
    assert "gpu0" not in gpus.detail


def test_invalid_entry_hides_later_ones(tmp_path: Path) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "1,7,0"}
    findings = diagnose(cpu_config(tmp_path), environ=env, nvml=two_gpus())
    gpus = one(findings, "gpus")
    assert gpus.status == "warn"
    assert "entry '7' is not a GPU here" in gpus.detail
    assert "every later entry (0)" in gpus.detail
    assert gpus.detail.endswith(f"measured: gpu1 NVIDIA H200 ({GPU_B})")
    assert gpus.fix == "valid entries are 0-1 or GPU UUIDs"


def test_unset_visible_devices_on_a_multi_gpu_machine(tmp_path: Path) -> None:
    gpus = one(diagnose(cpu_config(tmp_path), environ={}, nvml=two_gpus()), "gpus")
    assert gpus.status == "ok"
    assert "not set" in gpus.detail and "gpu0" in gpus.detail and "gpu1" in gpus.detail
    assert "CUDA_VISIBLE_DEVICES=0" in gpus.fix


def test_mixed_models_need_pci_bus_order(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(name="NVIDIA A100"), FakeGpu(name="NVIDIA T4", uuid="GPU-t4")])
    env = {"CUDA_VISIBLE_DEVICES": "0"}
    gpus = one(diagnose(cpu_config(tmp_path), environ=env, nvml=nvml), "gpus")
    assert (gpus.status, gpus.fix) == ("warn", "export CUDA_DEVICE_ORDER=PCI_BUS_ID")
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert one(diagnose(cpu_config(tmp_path), environ=env, nvml=nvml), "gpus").status == "ok"


def test_mig_instance_and_unknown_gpu_fail(tmp_path: Path) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "MIG-1234"}
    findings = diagnose(cpu_config(tmp_path), environ=env, nvml=two_gpus())
    assert one(findings, "gpus").status == "fail"
    assert "MIG instance" in one(findings, "gpus").detail
    config = MeterConfig(powercap_root=tmp_path / "none", gpus=[7])
    findings = diagnose(config, environ={}, nvml=two_gpus())
    assert one(findings, "energy").status == "fail"
    assert "GPU index 7 does not exist" in one(findings, "gpus").detail


# Study: assets and offline -----------------------------------------------------------------


def test_study_assets_and_offline(project: Project, tmp_path: Path) -> None:
    present = project.root / "code" / "weights.pt"
    present.write_bytes(b"\0")
    project.write_targets(
        {
            "ready": target_block(assets=["weights.pt"], offline=True),
            "missing": target_block(assets=["weights.pt", "vocab.json"]),
            "plain": target_block(),
        }
    )
    study = project.write_study(
        [
            {"target": "ready", "model": "small"},
            {"target": "missing", "model": "small"},
            {"target": "plain", "model": "small"},
        ]
    )
    findings = diagnose(cpu_config(tmp_path), study_path=study, environ={}, nvml=FakeNvml([]))
    assets = {f.detail.split(":")[0]: f for f in areas(findings, "assets")}
    offline = {f.detail.split(":")[0]: f for f in areas(findings, "offline")}
    assert assets["ready"].status == "ok"
    assert assets["missing"].status == "fail"
    assert str(project.root / "code" / "vocab.json") in assets["missing"].detail
    assert str(present) not in assets["missing"].detail
    assert assets["plain"].detail == "plain: no assets declared"
    assert offline["ready"].status == "ok" and "HF_HUB_OFFLINE=1" in offline["ready"].detail
    # Assets declared but downloads not forbidden: they may be fetched at run time anyway.
    assert offline["missing"].status == "warn"
    assert "offline: true" in offline["missing"].fix
    assert offline["plain"].status == "ok"
    by_env = diagnose(
        cpu_config(tmp_path),
        study_path=study,
        environ={"HF_HUB_OFFLINE": "1"},
        nvml=FakeNvml([]),
    )
    missing = next(f for f in areas(by_env, "offline") if f.detail.startswith("missing"))
    assert (missing.status, missing.detail) == (
        "ok",
        "missing: offline by environment (HF_HUB_OFFLINE=1)",
    )


def test_invalid_study_is_bad_input(project: Project, tmp_path: Path) -> None:
    study = project.write_study([{"target": "nope"}])
    with pytest.raises(ConfigError):
        diagnose(cpu_config(tmp_path), study_path=study, environ={}, nvml=FakeNvml([]))


# Results directory and baseline -------------------------------------------------------------


def test_results_dir_and_baseline(tmp_path: Path) -> None:
    results = tmp_path / "results"
    kwargs = {"environ": {}, "nvml": FakeNvml([]), "results_dir": results}
    findings = diagnose(cpu_config(tmp_path), **kwargs)  # type: ignore[arg-type]
    assert one(findings, "results").status == "ok"
    assert one(findings, "baseline").fix == f"hyperjoule baseline --results-dir {results}"
    save_baseline(
        results,
        Baseline(
            measured_at="2030-01-02T03:04:05+00:00",
            duration_s=30.0,
            power_w={"gpu": 61.25, "cpu_pkg": None, "cpu_dram": None},
            methods={"gpu": "counter", "cpu_pkg": "unavailable", "cpu_dram": "unavailable"},
        ),
    )
    findings = diagnose(cpu_config(tmp_path), **kwargs)  # type: ignore[arg-type]
    assert "gpu 61.2 W" in one(findings, "baseline").detail

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    kwargs["results_dir"] = blocked
    findings = diagnose(cpu_config(tmp_path), **kwargs)  # type: ignore[arg-type]
    assert one(findings, "results").status == "fail"


# Command line ----------------------------------------------------------------------------


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_doctor_command_exit_status(app: typer.Typer, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = CliRunner().invoke(app, ["doctor", "--results-dir", str(blocked)])
    assert result.exit_code == 1, result.output
    assert "fail" in result.output
    result = CliRunner().invoke(app, ["doctor", "--results-dir", str(tmp_path / "results")])
    # This machine's own sensors decide the rest: exit 1 exactly when a line failed.
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == (0 if " 0 fail" in result.output else 1), result.output


def test_baseline_command_saves_the_latest(app: typer.Typer, tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = ["baseline", "--duration-s", "0.1", "--results-dir", str(results)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = load_latest_baseline(results)
    assert saved is not None and saved.duration_s >= 0.1
    files = sorted(p.name for p in (results / "baselines").iterdir())
    assert len(files) == 2 and "latest.json" in files
    stamped = results / "baselines" / next(f for f in files if f != "latest.json")
    assert json.loads(stamped.read_text()) == saved.to_dict()
    assert f"saved {stamped}" in " ".join(result.output.split())


def test_baseline_command_checks_the_results_dir_first(app: typer.Typer, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = CliRunner().invoke(app, ["baseline", "--results-dir", str(blocked)])
    assert isinstance(result.exception, PreflightError)
    assert "measuring" not in result.output


def test_cpu_watts_per_core_from_the_study(project: Project, tmp_path: Path) -> None:
    """The setting doctor suggests exists: a study sets it, doctor and runs use it."""
    project.write_targets({"toy": target_block()})
    study = project.write_study([{"target": "toy", "model": "small"}], cpu_watts_per_core=37)
    findings = diagnose(cpu_config(tmp_path), study_path=study, environ={}, nvml=FakeNvml([]))
    assert "37 W" in one(findings, "energy cpu_pkg").detail


def test_every_setting_doctor_suggests_is_in_the_readme() -> None:
    import re

    import hyperjoule.cli._doctor_checks as checks

    source = Path(checks.__file__).read_text(encoding="utf-8")
    # Settings appear in fixes as 'name' / 'name: value' (quoted) or "set name".
    names = set(re.findall(r"'([a-z_]+)(?::[^']*)?'", source))
    names |= set(re.findall(r"\bset ([a-z]+_[a-z_]+)\b", source))
    assert {"cpu_watts_per_core", "offline", "gpus", "assets"} <= names
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert [n for n in sorted(names) if f"{n}:" not in readme] == []
