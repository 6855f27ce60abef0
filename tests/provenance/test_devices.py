"""Device and framework provenance: GPUs, driver/CUDA/NVML versions, CPU, OS, frameworks."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from hyperjoule.provenance import collect_devices, framework_versions
from meters.fake_nvml import FakeGpu, FakeNvml, two_gpus


class SystemNvml(FakeNvml):
    """The stand-in plus pynvml's system queries and the enforced power limit."""

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802 - pynvml's names
        self._check_init()
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        self._check_init()
        return 12040

    def nvmlSystemGetNVMLVersion(self) -> bytes:  # noqa: N802
        self._check_init()
        return b"12.550.54.15"  # older pynvml returns bytes

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:  # noqa: N802
        self._gpu(handle)
        return 700_000


def test_gpus_and_versions() -> None:
    nvml = SystemNvml(two_gpus().gpus)
    info = collect_devices(nvml, environ={})
    assert info["gpu_driver_version"] == "550.54.15"
    assert info["cuda_driver_version"] == "12.4"
    assert info["nvml_version"] == "12.550.54.15"
    assert info["gpu_reason"] is None
    assert info["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H200",
            "uuid": "GPU-aaaa0000-0000-0000-0000-000000000000",
            "memory_total_mib": 141 * 1024,
            "power_limit_w": 700.0,
        },
        {
            "index": 1,
            "name": "NVIDIA H200",
            "uuid": "GPU-bbbb0000-0000-0000-0000-000000000000",
            "memory_total_mib": 141 * 1024,
            "power_limit_w": 700.0,
        },
    ]
    assert nvml.references == 0


def test_only_the_measured_gpus() -> None:
    nvml = SystemNvml(two_gpus().gpus)
    assert [g["index"] for g in collect_devices(nvml, [1])["gpus"]] == [1]
    visible = {"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}
    assert [g["index"] for g in collect_devices(nvml, environ=visible)["gpus"]] == [1]


def test_missing_queries_are_none_with_the_reason() -> None:
    # The plain stand-in lacks the system queries, like an old pynvml.
    info = collect_devices(FakeNvml([FakeGpu()]), environ={})
    assert info["gpu_driver_version"] is None
    assert info["cuda_driver_version"] is None
    assert info["gpus"][0]["name"] == "NVIDIA H200"
    assert info["gpus"][0]["power_limit_w"] is None
    assert "nvmlSystemGetDriverVersion is not available" in info["gpu_reason"]
    assert "nvmlDeviceGetEnforcedPowerLimit" in info["gpu_reason"]


def test_lost_gpu_is_recorded_not_raised() -> None:
    nvml = SystemNvml([FakeGpu(lost=True)])
    info = collect_devices(nvml, environ={})
    assert info["gpus"] == [
        {"index": 0, "name": None, "uuid": None, "memory_total_mib": None, "power_limit_w": None}
    ]
    assert "GPU is lost" in info["gpu_reason"]


def test_without_nvml() -> None:
    info = collect_devices(FakeNvml([], init_error=9))
    assert info["gpus"] == []
    assert info["gpu_driver_version"] is None and info["nvml_version"] is None
    assert "Driver Not Loaded" in info["gpu_reason"]


def test_unknown_gpu_index_is_a_reason() -> None:
    info = collect_devices(SystemNvml(two_gpus().gpus), [4])
    assert info["gpus"] == []
    assert info["gpu_driver_version"] == "550.54.15"
    assert "GPU index 4 does not exist" in info["gpu_reason"]


def test_no_gpu_given() -> None:
    info = collect_devices(SystemNvml(two_gpus().gpus), environ={"CUDA_VISIBLE_DEVICES": ""})
    assert info["gpus"] == []
    assert info["gpu_reason"] == "no GPU given to the runs"


def test_cpu_and_os() -> None:
    info = collect_devices(FakeNvml([]), environ={})
    assert info["os"] == platform.platform()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.lower().startswith("model name")
        ]
        if names:
            assert info["cpu_model"] == names[0]


def test_framework_versions_from_metadata() -> None:
    versions = framework_versions()
    assert set(versions) == {"torch", "jax", "tensorflow", "transformers", "numpy"}
    assert versions["numpy"] == importlib.metadata.version("numpy")
    for name, version in versions.items():
        try:
            expected: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        assert version == expected, name


def test_framework_versions_import_no_framework() -> None:
    code = (
        "import sys; from hyperjoule.provenance import framework_versions; "
        "framework_versions(); "
        "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'transformers') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
