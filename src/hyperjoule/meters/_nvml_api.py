"""The NVML boundary: lazy import, error translation and SI units, all in one place.

``pynvml`` (PyPI ``nvidia-ml-py``) is optional; it is imported only when a GPU meter is
probed or created. Every call goes through :class:`Nvml`, which turns ``NVMLError`` into
:class:`NvmlCallError` (raised ``from`` the original) and vendor units into SI ones.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from hyperjoule.errors import MeterError
from hyperjoule.meters._units import bytes_to_mib, mj_to_j, mw_to_w, w_to_mw

__all__ = ["Nvml", "NvmlCallError", "load_nvml", "visible_gpu_indices"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "install NVIDIA's NVML bindings: pip install nvidia-ml-py"
_NVML_ERROR_NOT_SUPPORTED = 3  # nvmlReturn_t NVML_ERROR_NOT_SUPPORTED
_NVML_ERROR_NO_PERMISSION = 4  # nvmlReturn_t NVML_ERROR_NO_PERMISSION

T = TypeVar("T")


class NvmlCallError(MeterError):
    """An NVML call failed.

    Attributes:
        not_supported: The device does not support the query (``[N/A]`` in nvidia-smi),
            as opposed to a failure such as a lost device.
    """

    def __init__(
        self, message: str, *, not_supported: bool = False, no_permission: bool = False
    ) -> None:
        super().__init__(message)
        self.not_supported = not_supported
        self.no_permission = no_permission


def load_nvml() -> Any:
    """Import ``pynvml``.

    Raises:
        MeterError: It is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module("pynvml")
    except ImportError as e:
        raise MeterError(f"GPU energy needs the pynvml module ({e}); {INSTALL_HINT}") from e


class Nvml:
    """The NVML queries hyperjoule uses, in SI units, with NVML errors translated.

    Args:
        module: The ``pynvml`` module, or an object with the same functions (tests).
    """

    def __init__(self, module: Any) -> None:
        self.module = module
        self._error_type: type[BaseException] = getattr(module, "NVMLError", Exception)
        self._not_supported: type[BaseException] | None = getattr(
            module, "NVMLError_NotSupported", None
        )

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except self._error_type as e:
            not_supported = (
                self._not_supported is not None and isinstance(e, self._not_supported)
            ) or getattr(e, "value", None) == _NVML_ERROR_NOT_SUPPORTED
            no_permission = getattr(e, "value", None) == _NVML_ERROR_NO_PERMISSION
            raise NvmlCallError(
                f"NVML {what} failed: {e}",
                not_supported=not_supported,
                no_permission=no_permission,
            ) from e

    def init(self) -> None:
        """Initialise NVML (reference-counted by the library)."""
        self._call("init", self.module.nvmlInit)

    def shutdown(self) -> None:
        """Release one NVML initialisation."""
        self._call("shutdown", self.module.nvmlShutdown)

    def device_count(self) -> int:
        """Number of GPUs NVML sees (in PCI bus order)."""
        return int(self._call("device count", self.module.nvmlDeviceGetCount))

    def handle(self, index: int) -> Any:
        """Handle of the GPU with NVML index ``index``."""
        return self._call(f"handle of GPU {index}", self.module.nvmlDeviceGetHandleByIndex, index)

    def uuid(self, handle: Any) -> str:
        """The GPU's UUID (``GPU-…``)."""
        return _text(self._call("UUID", self.module.nvmlDeviceGetUUID, handle))

    def name(self, handle: Any) -> str:
        """The GPU's product name."""
        return _text(self._call("name", self.module.nvmlDeviceGetName, handle))

    def total_energy_j(self, handle: Any) -> float:
        """Energy counter since the driver loaded, in joules (Volta and newer)."""
        energy_mj = self._call(
            "total energy", self.module.nvmlDeviceGetTotalEnergyConsumption, handle
        )
        return mj_to_j(float(energy_mj))

    def power_w(self, handle: Any) -> float:
        """Current board power draw, in watts."""
        return mw_to_w(float(self._call("power", self.module.nvmlDeviceGetPowerUsage, handle)))

    def temperature_c(self, handle: Any) -> float:
        """GPU core temperature, in °C."""
        sensor = getattr(self.module, "NVML_TEMPERATURE_GPU", 0)
        return float(
            self._call("temperature", self.module.nvmlDeviceGetTemperature, handle, sensor)
        )

    def utilization_pct(self, handle: Any) -> tuple[float, float]:
        """GPU and memory utilisation over the last sample period, in percent."""
        rates = self._call("utilization", self.module.nvmlDeviceGetUtilizationRates, handle)
        return float(rates.gpu), float(rates.memory)

    def memory_used_mib(self, handle: Any) -> float:
        """Device memory in use, in MiB."""
        info = self._call("memory info", self.module.nvmlDeviceGetMemoryInfo, handle)
        return bytes_to_mib(float(info.used))

    def sm_clock_mhz(self, handle: Any) -> float:
        """Current SM clock, in MHz."""
        clock = getattr(self.module, "NVML_CLOCK_SM", 1)
        return float(self._call("SM clock", self.module.nvmlDeviceGetClockInfo, handle, clock))

    def power_limit_w(self, handle: Any) -> float:
        """The board power limit in force, in watts."""
        limit_mw = self._call("power limit", self.module.nvmlDeviceGetPowerManagementLimit, handle)
        return mw_to_w(float(limit_mw))

    def power_limit_range_w(self, handle: Any) -> tuple[float, float]:
        """The lowest and highest power limit the board accepts, in watts."""
        low_mw, high_mw = self._call(
            "power limit range", self.module.nvmlDeviceGetPowerManagementLimitConstraints, handle
        )
        return mw_to_w(float(low_mw)), mw_to_w(float(high_mw))

    def set_power_limit_w(self, handle: Any, limit_w: float) -> None:
        """Set the board power limit (needs root or a permissive driver setting)."""
        self._call(
            "set power limit",
            self.module.nvmlDeviceSetPowerManagementLimit,
            handle,
            w_to_mw(limit_w),
        )

    def compute_pids(self, handle: Any) -> set[int]:
        """Process ids with a compute context on the GPU."""
        procs = self._call(
            "compute processes", self.module.nvmlDeviceGetComputeRunningProcesses, handle
        )
        return {int(p.pid) for p in procs}


def _text(value: str | bytes) -> str:
    # Older pynvml releases return bytes.
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_gpu_indices(
    nvml: Nvml, requested: Sequence[int] | None, environ: Mapping[str, str]
) -> list[int]:
    """The NVML indices of the GPUs a run is given.

    ``requested`` wins; otherwise ``CUDA_VISIBLE_DEVICES`` (indices or ``GPU-`` UUIDs,
    with CUDA's rule that an invalid entry hides it and every later one); otherwise all.

    Raises:
        MeterError: A requested index does not exist, or a ``CUDA_VISIBLE_DEVICES`` entry
            cannot be mapped to a GPU (MIG instances are not measurable per instance).
        NvmlCallError: NVML failed.
    """
    count = nvml.device_count()
    if requested is not None:
        unknown = [i for i in requested if not 0 <= i < count]
        if unknown:
            raise MeterError(
                f"GPU index {unknown[0]} does not exist: NVML sees {count} GPU(s)"
                f"{f' (0-{count - 1})' if count else ''}; fix the 'gpus' setting"
            )
        return list(dict.fromkeys(requested))
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    indices: list[int] = []
    for entry in (e.strip() for e in visible.split(",")):
        index = _resolve_entry(nvml, entry, count)
        if index is None:
            if entry:
                logger.warning(
                    "CUDA_VISIBLE_DEVICES entry %r is not a GPU on this machine; CUDA hides it "
                    "and every later entry, so hyperjoule measures GPUs %s",
                    entry,
                    indices,
                )
            break
        indices.append(index)
    if count > 1 and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        names = {nvml.name(nvml.handle(i)) for i in range(count)}
        if len(names) > 1 and any(e.strip().isdigit() for e in visible.split(",")):
            # CUDA numbers GPUs fastest first by default, NVML in PCI bus order.
            logger.warning(
                "CUDA_VISIBLE_DEVICES=%s uses indices on a machine with different GPU models "
                "(%s); CUDA may number them differently from NVML. Set "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID so the measured GPUs are the ones the run uses",
                visible,
                ", ".join(sorted(names)),
            )
    return list(dict.fromkeys(indices))


def _resolve_entry(nvml: Nvml, entry: str, count: int) -> int | None:
    if entry.lstrip("-").isdigit():
        index = int(entry)
        return index if 0 <= index < count else None
    if entry.startswith("MIG-"):
        raise MeterError(
            f"CUDA_VISIBLE_DEVICES names a MIG instance ({entry}): NVML reports energy per "
            f"physical GPU only; set 'gpus' to the parent GPU's index to measure it combined"
        )
    if entry.startswith("GPU-"):
        # CUDA accepts any unique prefix of a UUID.
        matches = [i for i in range(count) if nvml.uuid(nvml.handle(i)).startswith(entry)]
        if len(matches) == 1:
            return matches[0]
    return None
