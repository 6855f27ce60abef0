"""Each run is measured on exactly the GPUs it is given; no study starts half-measured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "meters"))

from fake_nvml import two_gpus  # noqa: E402

from conftest import Project  # noqa: E402
from hyperjoule.config import load_study  # noqa: E402
from hyperjoule.devices import NodeDevices  # noqa: E402
from hyperjoule.errors import MeterError, PreflightError  # noqa: E402
from hyperjoule.execution import run_study  # noqa: E402
from hyperjoule.execution._metering import preflight_meters, run_environ  # noqa: E402
from hyperjoule.meters import EstimateMeter, MeterConfig  # noqa: E402
from hyperjoule.planning import plan_study  # noqa: E402


def _specs(project: Project, **experiment: object) -> tuple[list, dict]:  # type: ignore[type-arg]
    exp = {"target": "toy", "model": "small", "mode": "default", "runs": 1, **experiment}
    loaded = load_study(project.write_study([exp]))
    return plan_study(loaded), loaded.targets


def _pool(tmp_path: Path) -> NodeDevices:
    # No powercap tree: CPU is estimated; GPUs come from the fake NVML.
    config = MeterConfig(powercap_root=tmp_path / "no-powercap")
    return NodeDevices(config, nvml=two_gpus())


def test_run_measures_only_the_gpus_it_is_given(project: Project, tmp_path: Path) -> None:
    specs, targets = _specs(project, gpus=[1])
    env = run_environ(specs[0], targets["toy"])
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    meters = _pool(tmp_path).meters_for(specs[0].gpus, env)
    gpu_meters = [m for m in meters if "gpu" in m.components and m.name != "estimate"]
    assert gpu_meters, meters
    assert [g.index for g in gpu_meters[0].gpus] == [1]  # type: ignore[attr-defined]


def test_target_gpus_are_inherited_and_cuda_visible_devices_respected(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs, targets = _specs(project)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    meters = _pool(tmp_path).meters_for(specs[0].gpus, run_environ(specs[0], targets["toy"]))
    gpu_meter = next(m for m in meters if hasattr(m, "gpus"))
    assert [g.index for g in gpu_meter.gpus] == [0]  # type: ignore[attr-defined]


def test_unknown_gpu_index_refuses_the_study(project: Project, tmp_path: Path) -> None:
    specs, targets = _specs(project, gpus=[5])
    with pytest.raises(MeterError, match="5"):
        preflight_meters(
            _pool(tmp_path),
            specs,
            targets,
            allow_estimates=True,
            study_path=project.root / "s.yaml",
        )


def test_estimates_need_consent(project: Project) -> None:
    path = project.write_study(
        [{"target": "toy", "model": "small", "mode": "default"}], allow_estimates=False
    )
    with pytest.raises(PreflightError, match="allow_estimates"):
        run_study(load_study(path), project.results, meters=[EstimateMeter()])
    assert not project.results.exists(), "a refused study writes nothing"
    path = project.write_study(
        [{"target": "toy", "model": "small", "mode": "default"}], allow_estimates=True
    )
    result = run_study(load_study(path), project.results, meters=[EstimateMeter()])
    cpu = result.records[0].energy.get("cpu_pkg")
    assert cpu.method == "estimated" and cpu.energy_j is not None and cpu.energy_j > 0
    assert "estimate" in (cpu.reason or "")
