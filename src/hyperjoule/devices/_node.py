"""The devices of one node: its meters, created once per device and shared by every run.

:class:`NodeDevices` is what an executor hands the attempt executor: it opens a keyed
energy window over exactly the devices of one attempt (:meth:`NodeDevices.open_window`),
however many attempts run at once. Device meters (RAPL, NVML, fakes) are created once
per device and wrapped in a :class:`~hyperjoule.devices.SharedMeter`; per-process
meters (the CPU-time estimate) are copied per window, since they measure only the
window's own process tree.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hyperjoule.devices._procfs import group_cpu_s
from hyperjoule.devices._shared import CpuReader, SharedMeter
from hyperjoule.meters import (
    EstimateMeter,
    Meter,
    MeterConfig,
    MeterReading,
    NvmlMeter,
    RaplMeter,
    RunUsage,
    UnavailableMeter,
    create_meters,
    readings_so_far,
    unavailable_reading,
)

__all__ = ["EnergyWindow", "GpuSelection", "NodeDevices"]

logger = logging.getLogger(__name__)

GpuSelection = tuple[int, ...] | None
"""NVML indices of an attempt's GPUs; None: those of ``CUDA_VISIBLE_DEVICES``, or all."""

MeterFactory = Callable[[GpuSelection, Mapping[str, str]], list[Meter]]


class EnergyWindow:
    """One attempt's open window over its devices; close it exactly once."""

    def __init__(self, key: str, shared: list[SharedMeter], own: list[Meter]) -> None:
        self.key = key
        self._shared = shared
        self._own = own
        self._closed = False

    @property
    def meter_names(self) -> list[str]:
        """Names of the meters measuring this window."""
        return [m.name for m in self._shared] + [m.name for m in self._own]

    @property
    def cpu_watts_per_core(self) -> float | None:
        """Power per busy core of this window's CPU estimate; None when CPU is not estimated."""
        for meter in self._own:
            if isinstance(meter, EstimateMeter):
                return meter.cpu_watts_per_core
        return None

    def attach(self, pgid: int) -> None:
        """Count process group ``pgid`` (the run, its backgrounds) as this window's."""
        for meter in self._shared:
            meter.attach(self.key, pgid)

    def close(self, usage: RunUsage) -> list[MeterReading]:
        """Close the window; one reading per meter.

        Raises:
            RuntimeError: The window was already closed.
        """
        if self._closed:
            raise RuntimeError(f"energy window {self.key!r} closed twice")
        self._closed = True
        readings = [meter.close(self.key, usage) for meter in self._shared]
        readings += [meter.stop(usage) for meter in self._own]
        return readings

    def peek(self, usage: RunUsage) -> list[MeterReading]:
        """Readings so far, the window staying open (checkpoints of a running attempt).

        Shared meters apportion a device only when a window closes: their components
        are unavailable so far, with that reason.
        """
        why = "shared device meter {!r}: apportioned only when the attempt ends"
        readings = [unavailable_reading(m.components, why.format(m.name)) for m in self._shared]
        return readings + readings_so_far(self._own, usage)

    def abort(self) -> None:
        """Drop the window without readings (the attempt did not start)."""
        if self._closed:
            return
        self._closed = True
        for meter in self._shared:
            meter.abort(self.key)
        for own in self._own:
            own.close()


class NodeDevices:
    """The meters of this node, per device, shared by every attempt that runs here.

    Args:
        config: Meter settings (``gpus`` is replaced per selection).
        fixed: Use these meters for every attempt instead (tests, library callers);
            they are shared like device meters, except the per-process ones.
        nvml: A ``pynvml`` stand-in (tests); the real module is loaded lazily.
        scratch_dir: Where segment timelines wait (a temporary directory by default).
        cpu_reader: CPU time of process groups, in seconds (tests pass a fake).
    """

    def __init__(
        self,
        config: MeterConfig | None = None,
        fixed: Sequence[Meter] | None = None,
        *,
        nvml: Any = None,
        scratch_dir: Path | None = None,
        cpu_reader: CpuReader = group_cpu_s,
    ) -> None:
        self._config = config or MeterConfig()
        self._fixed = list(fixed) if fixed is not None else None
        self._nvml = nvml
        self._cpu_reader = cpu_reader
        self._own_scratch = scratch_dir is None
        self._scratch = scratch_dir or Path(tempfile.mkdtemp(prefix="hyperjoule-meters-"))
        self._lock = threading.Lock()
        self._by_selection: dict[tuple[GpuSelection, str | None], list[Meter]] = {}
        self._shared: dict[object, SharedMeter] = {}

    @property
    def config(self) -> MeterConfig:
        """The measurement settings this node's meters are made with."""
        return self._config

    def meters_for(self, gpus: GpuSelection, environ: Mapping[str, str]) -> list[Meter]:
        """The meters of one GPU selection (created on first use; for preflight, baseline).

        Raises:
            MeterError: The selection names a GPU that does not exist.
        """
        if self._fixed is not None:
            return self._fixed
        key = (gpus, environ.get("CUDA_VISIBLE_DEVICES"))
        with self._lock:
            if key not in self._by_selection:
                config = MeterConfig(
                    **{**vars(self._config), "gpus": list(gpus) if gpus is not None else None}
                )
                self._by_selection[key] = create_meters(config, environ, nvml=self._nvml)
            return self._by_selection[key]

    def open_window(
        self, key: str, *, gpus: GpuSelection, environ: Mapping[str, str], run_dir: Path
    ) -> EnergyWindow:
        """Open window ``key`` over the devices of one attempt.

        Device meters are shared with concurrent windows (their energy is apportioned);
        per-process meters measure this window alone.
        """
        shared: list[SharedMeter] = []
        own: list[Meter] = []
        for meter in self.meters_for(gpus, environ):
            if _per_process(meter):
                clone = copy.copy(meter)
                clone.start(run_dir)
                own.append(clone)
            else:
                shared.append(self._shared_meter(meter))
        opened: list[SharedMeter] = []
        try:
            for device in shared:
                device.open(key, run_dir)
                opened.append(device)
        except BaseException:
            for device in opened:
                device.abort(key)
            raise
        return EnergyWindow(key, shared, own)

    def _shared_meter(self, meter: Meter) -> SharedMeter:
        identity = _device_identity(meter)
        with self._lock:
            if identity not in self._shared:
                self._shared[identity] = SharedMeter(meter, self._scratch, self._cpu_reader)
            return self._shared[identity]

    def all_meters(self) -> list[Meter]:
        """Every meter created (for provenance)."""
        if self._fixed is not None:
            return list(self._fixed)
        return [m for meters in self._by_selection.values() for m in meters]

    def close(self) -> None:
        """End every segment and close the meters this node created (not fixed ones)."""
        for shared in self._shared.values():
            shared.close_all()
        self._shared.clear()
        if self._fixed is None:
            for meters in self._by_selection.values():
                for meter in meters:
                    meter.close()
        self._by_selection.clear()
        if self._own_scratch:
            _rmtree_quiet(self._scratch)


def _per_process(meter: Meter) -> bool:
    """Meters that measure (or explain) only the window's own process tree."""
    return isinstance(meter, (EstimateMeter, UnavailableMeter))


def _device_identity(meter: Meter) -> object:
    """One shared meter per physical device set, however many selections created one."""
    if isinstance(meter, RaplMeter):
        return ("rapl", str(meter.powercap_root))
    if isinstance(meter, NvmlMeter):
        return ("nvml", tuple(gpu.index for gpu in meter.gpus))
    return ("meter", id(meter))


def _rmtree_quiet(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    logger.debug("removed %s", path)


def node_name() -> str:
    """This node's host name (the local executor's node id)."""
    return os.uname().nodename


def node_gpus(environ: Mapping[str, str] | None = None, *, nvml: Any = None) -> tuple[int, ...]:
    """NVML indices of the GPUs this node may give to runs (empty without NVML or GPUs).

    Those of ``CUDA_VISIBLE_DEVICES`` when it is set, else every GPU NVML sees.
    """
    from hyperjoule.meters._nvml_api import Nvml, load_nvml, visible_gpu_indices

    environ = os.environ if environ is None else environ
    try:
        api = Nvml(load_nvml() if nvml is None else nvml)
        api.init()
    except Exception as e:  # no library, no driver: a CPU-only node
        logger.debug("no GPUs for executors: %s", e)
        return ()
    try:
        return tuple(visible_gpu_indices(api, None, environ))
    except Exception as e:
        logger.warning("cannot list this node's GPUs (%s); runs get no GPUs of their own", e)
        return ()
    finally:
        try:
            api.shutdown()
        except Exception as e:
            logger.debug("NVML shutdown failed: %s", e)
