"""NVML queries for diagnostics and provenance (driver versions, GPU processes, limits).

The meters need only :class:`~hyperjoule.meters._nvml_api.Nvml`; ``hyperjoule doctor``
and the provenance collector also ask NVML about the system and the processes on each
GPU. These calls go through the same error translation and unit conversion. A function
that the loaded ``pynvml`` (or a stand-in) lacks is reported like an unsupported query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hyperjoule.meters._nvml_api import Nvml, NvmlCallError, _text
from hyperjoule.meters._units import bytes_to_mib, mw_to_w

__all__ = ["GpuProcess", "NvmlInfo", "format_cuda_version"]


@dataclass(frozen=True)
class GpuProcess:
    """A process holding a compute context on a GPU.

    Attributes:
        pid: Process id as NVML reports it (the host's PID namespace).
        used_memory_mib: Device memory the process holds, in MiB; None when NVML cannot
            tell (common in containers and on Windows WDDM).
    """

    pid: int
    used_memory_mib: float | None


def format_cuda_version(version: int) -> str:
    """Turn NVML's CUDA driver version (``12040``) into ``12.4``."""
    return f"{version // 1000}.{version % 1000 // 10}"


class NvmlInfo(Nvml):
    """:class:`Nvml` plus the system and process queries of ``doctor`` and provenance."""

    def _function(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.module, name, None)
        if fn is None:
            raise NvmlCallError(f"NVML {name} is not available in this pynvml", not_supported=True)
        return fn  # type: ignore[no-any-return]

    def driver_version(self) -> str:
        """NVIDIA driver version (``550.54.15``)."""
        fn = self._function("nvmlSystemGetDriverVersion")
        return _text(self._call("driver version", fn))

    def cuda_driver_version(self) -> str:
        """Newest CUDA version the driver supports (``12.4``)."""
        fn = self._function("nvmlSystemGetCudaDriverVersion")
        return format_cuda_version(int(self._call("CUDA driver version", fn)))

    def nvml_version(self) -> str:
        """Version of the NVML library (``12.550.54.15``)."""
        fn = self._function("nvmlSystemGetNVMLVersion")
        return _text(self._call("NVML version", fn))

    def memory_total_mib(self, handle: Any) -> float:
        """Total device memory, in MiB."""
        fn = self._function("nvmlDeviceGetMemoryInfo")
        return bytes_to_mib(float(self._call("memory info", fn, handle).total))

    def power_limit_w(self, handle: Any) -> float:
        """Power limit the driver enforces, in watts (it bounds the energy of a run)."""
        fn = self._function("nvmlDeviceGetEnforcedPowerLimit")
        return mw_to_w(float(self._call("power limit", fn, handle)))

    def compute_processes(self, handle: Any) -> list[GpuProcess]:
        """Processes with a compute context on the GPU, with the memory they hold."""
        fn = self._function("nvmlDeviceGetComputeRunningProcesses")
        procs = self._call("compute processes", fn, handle)
        out: list[GpuProcess] = []
        for proc in procs:
            used = getattr(proc, "usedGpuMemory", None)
            used_mib = bytes_to_mib(float(used)) if isinstance(used, (int, float)) else None
            out.append(GpuProcess(int(proc.pid), used_mib))
        return out
