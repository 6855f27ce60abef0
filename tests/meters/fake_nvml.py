"""A stand-in for the ``pynvml`` module: the same function names, errors and units.

Units are NVML's: energy in mJ, power in mW, memory in bytes. A reading set to None
raises ``NVMLError_NotSupported`` like an ``[N/A]`` field does on the real library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_NO_PERMISSION = 4
_MESSAGES = {
    1: "Uninitialized",
    3: "Not Supported",
    4: "Insufficient Permissions",
    9: "Driver Not Loaded",
    15: "GPU is lost",
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the nvmlReturn_t value."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"Unknown Error {self.value}")


class NVMLError_NotSupported(NVMLError):  # noqa: N801, N818 - pynvml's own name
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


@dataclass
class FakeGpu:
    """One GPU; tests change its readings between calls."""

    name: str = "NVIDIA H200"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    energy_mj: int | None = 1_000_000  # None: no energy counter (pre-Volta)
    power_mw: int | None = 250_000
    temp_c: int | None = 55
    util_gpu_pct: int | None = 90
    util_mem_pct: int = 40
    memory_used_bytes: int = 8 * 2**30
    sm_clock_mhz: int = 1980
    pids: list[int] = field(default_factory=list)
    lost: bool = False  # every query fails with GPU_IS_LOST
    power_limit_mw: int = 300_000
    power_limit_range_mw: tuple[int, int] = (100_000, 350_000)
    may_set_power_limit: bool = True  # False: NO_PERMISSION, as for a non-root user
    power_limit_history_mw: list[int] = field(default_factory=list)


class FakeNvml:
    """Module-like object with pynvml's functions over a list of :class:`FakeGpu`."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self, gpus: list[FakeGpu], *, init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.references = 0
        self.calls: list[str] = []

    # Library life cycle -------------------------------------------------------------
    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.references += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self._check_init()
        self.references -= 1

    def _check_init(self) -> None:
        if self.references <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: int) -> FakeGpu:
        self._check_init()
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return gpu

    @staticmethod
    def _value(value: Any) -> Any:
        if value is None:
            raise NVMLError_NotSupported()
        return value

    # Devices --------------------------------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        self._check_init()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: int) -> bytes:  # noqa: N802
        return self._gpu(handle).name.encode()  # older pynvml returns bytes

    # Readings -------------------------------------------------------------------------
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        self.calls.append("energy")
        return int(self._value(self._gpu(handle).energy_mj))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        self.calls.append("power")
        return int(self._value(self._gpu(handle).power_mw))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:  # noqa: N802
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._value(self._gpu(handle).temp_c))

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        gpu = self._gpu(handle)
        return SimpleNamespace(gpu=self._value(gpu.util_gpu_pct), memory=gpu.util_mem_pct)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        gpu = self._gpu(handle)
        total = 141 * 2**30
        used = gpu.memory_used_bytes
        return SimpleNamespace(total=total, free=total - used, used=used)

    def nvmlDeviceGetClockInfo(self, handle: int, clock_type: int) -> int:  # noqa: N802
        assert clock_type == self.NVML_CLOCK_SM
        return self._gpu(handle).sm_clock_mhz

    def nvmlDeviceGetPowerManagementLimit(self, handle: int) -> int:  # noqa: N802
        return self._gpu(handle).power_limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: int) -> list[int]:  # noqa: N802
        return list(self._gpu(handle).power_limit_range_mw)

    def nvmlDeviceSetPowerManagementLimit(self, handle: int, limit_mw: int) -> None:  # noqa: N802
        gpu = self._gpu(handle)
        if not gpu.may_set_power_limit:
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        low, high = gpu.power_limit_range_mw
        if not low <= limit_mw <= high:
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        gpu.power_limit_mw = int(limit_mw)
        gpu.power_limit_history_mw.append(int(limit_mw))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:  # noqa: N802
        return [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in self._gpu(handle).pids]


def two_gpus() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu(uuid="GPU-aaaa0000-0000-0000-0000-000000000000"),
            FakeGpu(name="NVIDIA H200", uuid="GPU-bbbb0000-0000-0000-0000-000000000000"),
        ]
    )
