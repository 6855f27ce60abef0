"""GPU energy and timelines from NVML: the hardware energy counter, else integrated power.

Per GPU, energy comes from ``nvmlDeviceGetTotalEnergyConsumption`` read at the window's
boundaries (Volta and newer: method ``counter``); GPUs without it get the trapezoid
integral of power polled on the monotonic clock (method ``integrated``). Independently, a
sampler thread records power, temperature, utilisation, memory and SM clock of every
measured GPU into ``energy/gpu.csv`` and the record's power block.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from hyperjoule.errors import MeterError
from hyperjoule.meters._base import Meter, MeterReading, ProbeResult, RunUsage
from hyperjoule.meters._nvml_api import Nvml, NvmlCallError, load_nvml, visible_gpu_indices
from hyperjoule.meters._sampler import (
    PeriodicSampler,
    SampledWindow,
    open_timeline,
    trapezoid_energy_j,
)
from hyperjoule.records import Attribution, EnergyComponent, PowerBlock

__all__ = ["NvmlMeter", "probe_nvml"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

GPU_CSV_HEADER = "time_s,gpu,power_w,temp_c,util_pct,mem_util_pct,mem_used_mib,sm_clock_mhz"


class _Gpu:
    """One measured GPU and what it recorded in the current window."""

    def __init__(self, index: int, handle: Any, name: str) -> None:
        self.index = index
        self.handle = handle
        self.device = f"gpu{index} {name}"
        self.reset()

    def reset(self) -> None:
        self.start_energy_j: float | None = None
        self.counter_error: str | None = None
        self.times_s: list[float] = []
        self.powers_w: list[float] = []
        self.missed_power = 0
        self.power_error: str | None = None
        self.temps_c: list[float] = []
        self.utils_pct: list[float] = []


class NvmlMeter(SampledWindow, Meter):
    """GPU energy of the given GPUs (per-GPU counter, else integrated power) and timelines.

    Args:
        gpu_indices: NVML indices of the GPUs to measure; None: every GPU.
        sampling_period_s: Timeline sampling period, in seconds.
        nvml: The ``pynvml`` module or a stand-in with the same functions; imported
            lazily when None.
        clock: Monotonic clock in seconds (tests replace it).

    Raises:
        MeterError: pynvml is missing (with the install hint), NVML cannot start, or a
            GPU index does not exist.
    """

    name = "nvml"
    components = ("gpu",)

    def __init__(
        self,
        gpu_indices: Sequence[int] | None = None,
        sampling_period_s: float = 0.1,
        nvml: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not sampling_period_s > 0:
            raise ValueError(f"sampling_period_s must be positive, got {sampling_period_s}")
        self.sampling_period_s = sampling_period_s
        self._clock = clock
        self._nvml = Nvml(load_nvml() if nvml is None else nvml)
        self._nvml.init()
        try:
            indices = visible_gpu_indices(self._nvml, gpu_indices, {})
            handles = [(i, self._nvml.handle(i)) for i in indices]
            self.gpus = [_Gpu(i, h, self._nvml.name(h)) for i, h in handles]
        except MeterError:
            self._nvml.shutdown()
            raise
        self._sampler: PeriodicSampler | None = None
        self._timeline: TextIO | None = None
        self._t0_s = 0.0
        self._ticks: list[tuple[float, float | None]] = []  # (time, total power of all GPUs)
        self._pids_seen: dict[int, set[int]] = {}
        self._pid_error: str | None = None
        # sample() may be called while the sampler thread runs.
        self._lock = threading.Lock()

    def sample(self) -> float:
        """Take one timeline sample of every GPU now; return its time (monotonic seconds).

        The sampler thread calls this every ``sampling_period_s``; callers may add samples.
        """
        with self._lock:
            now_s = self._clock()
            if not self._ticks:
                self._t0_s = now_s  # the window's first sample is its time origin
            total_w: float | None = 0.0
            for gpu in self.gpus:
                power_w = self._try(gpu, self._nvml.power_w, is_power=True)
                if power_w is None:
                    gpu.missed_power += 1
                else:
                    gpu.times_s.append(now_s)
                    gpu.powers_w.append(power_w)
                total_w = None if total_w is None or power_w is None else total_w + power_w
                temp_c = self._try(gpu, self._nvml.temperature_c)
                if temp_c is not None:
                    gpu.temps_c.append(temp_c)
                util_pct, mem_util_pct = self._try(gpu, self._nvml.utilization_pct) or (None, None)
                if util_pct is not None:
                    gpu.utils_pct.append(util_pct)
                if self._timeline is not None:
                    mem_mib = self._try(gpu, self._nvml.memory_used_mib)
                    clock_mhz = self._try(gpu, self._nvml.sm_clock_mhz)
                    cells = [power_w, temp_c, util_pct, mem_util_pct, mem_mib, clock_mhz]
                    row = ",".join("" if v is None else f"{v:.3f}" for v in cells)
                    self._timeline.write(f"{now_s - self._t0_s:.4f},{gpu.index},{row}\n")
            self._ticks.append((now_s, total_w))
            return now_s

    def _try(self, gpu: _Gpu, read: Callable[[Any], T], *, is_power: bool = False) -> T | None:
        try:
            return read(gpu.handle)
        except NvmlCallError as e:
            # [N/A] readings leave a blank cell; they are common on consumer GPUs.
            if is_power:
                gpu.power_error = str(e)
            return None

    def _record_pids(self) -> None:
        for gpu in self.gpus:
            try:
                self._pids_seen.setdefault(gpu.index, set()).update(
                    self._nvml.compute_pids(gpu.handle)
                )
            except NvmlCallError as e:
                self._pid_error = str(e)

    def _open_window(self, run_dir: Path) -> None:
        self._ticks = []
        self._pids_seen = {}
        self._pid_error = None
        for gpu in self.gpus:
            gpu.reset()
            try:
                gpu.start_energy_j = self._nvml.total_energy_j(gpu.handle)
            except NvmlCallError as e:
                gpu.counter_error = str(e)
        # Processes already on the GPUs before the run starts cannot be the run's own.
        self._record_pids()
        self._timeline = open_timeline(run_dir / "energy" / "gpu.csv", GPU_CSV_HEADER)
        self.sample()
        self._sampler = PeriodicSampler(
            self.sampling_period_s, lambda _now_s: self.sample(), name="hyperjoule-nvml"
        )
        self._sampler.start()

    def _peek_window(self, usage: RunUsage) -> MeterReading | None:
        """Counter energy so far; None where a GPU has no counter (integrated at close)."""
        if not self.gpus or any(gpu.start_energy_j is None for gpu in self.gpus):
            return None
        total_j = 0.0
        for gpu in self.gpus:
            start_j = gpu.start_energy_j
            assert start_j is not None  # checked above
            now_j = self._nvml.total_energy_j(gpu.handle)  # an NVML error: no reading
            if now_j < start_j:
                return None
            total_j += now_j - start_j
        attribution, why = self._attribution()
        component = EnergyComponent(
            energy_j=total_j,
            method="counter",
            devices=[gpu.device for gpu in self.gpus],
            attribution=attribution,
            reason=why,
        )
        return MeterReading({"gpu": component})

    def _close_window(self, usage: RunUsage) -> MeterReading:
        self._stop_sampler()
        end_s = self.sample()
        files = ["energy/gpu.csv"] if self._timeline is not None else []
        self._close_timeline()
        # The run's processes have exited: whatever holds a GPU context now is foreign.
        self._record_pids()
        return MeterReading({"gpu": self._energy(end_s)}, power=self._power_block(), files=files)

    def _energy(self, end_s: float) -> EnergyComponent:
        if not self.gpus:
            return EnergyComponent.unavailable("no GPU to measure (none visible to the run)")
        energies_j: list[float] = []
        integrated: list[str] = []
        errors: list[str] = []
        for gpu in self.gpus:
            energy_j = self._counter_energy_j(gpu)
            if energy_j is None:
                energy_j = self._integrated_energy_j(gpu, end_s)
                if energy_j is None:
                    errors.append(f"{gpu.device}: {gpu.counter_error}; {gpu.power_error}")
                    continue
                integrated.append(gpu.device)
            energies_j.append(energy_j)
        if errors:
            return EnergyComponent.unavailable("; ".join(errors))
        reasons = []
        period_s = None
        if integrated:
            period_s = self._achieved_period_s()
            missed = sum(gpu.missed_power for gpu in self.gpus)
            reasons.append(
                f"no energy counter on {', '.join(integrated)}: trapezoid over power samples"
                + (f" ({missed} [N/A] readings bridged)" if missed else "")
            )
        attribution, foreign = self._attribution()
        if foreign:
            reasons.append(foreign)
        return EnergyComponent(
            energy_j=sum(energies_j),
            method="integrated" if integrated else "counter",
            devices=[gpu.device for gpu in self.gpus],
            attribution=attribution,
            reason="; ".join(reasons) or None,
            sampling_period_s=period_s,
        )

    def _counter_energy_j(self, gpu: _Gpu) -> float | None:
        if gpu.start_energy_j is None:
            return None
        try:
            end_j = self._nvml.total_energy_j(gpu.handle)
        except NvmlCallError as e:
            gpu.counter_error = str(e)
            return None
        if end_j < gpu.start_energy_j:
            gpu.counter_error = f"energy counter went backwards on {gpu.device} (driver reload?)"
            return None
        return end_j - gpu.start_energy_j

    def _integrated_energy_j(self, gpu: _Gpu, end_s: float) -> float | None:
        if len(gpu.powers_w) < 2:
            gpu.power_error = f"fewer than two power readings ({gpu.power_error or 'none failed'})"
            return None
        # Hold the first/last valid reading over stretches where power read [N/A].
        times_s = [self._t0_s, *gpu.times_s, end_s]
        powers_w = [gpu.powers_w[0], *gpu.powers_w, gpu.powers_w[-1]]
        return trapezoid_energy_j(times_s, powers_w)

    def _achieved_period_s(self) -> float | None:
        if len(self._ticks) < 2:
            return None
        return (self._ticks[-1][0] - self._ticks[0][0]) / (len(self._ticks) - 1)

    def _attribution(self) -> tuple[Attribution, str | None]:
        own = os.getpid()
        foreign = {
            index: sorted(pids - {own}) for index, pids in self._pids_seen.items() if pids - {own}
        }
        if foreign:
            where = "; ".join(f"GPU {i}: pid {', '.join(map(str, p))}" for i, p in foreign.items())
            return "combined", f"other processes used the GPU during the run ({where})"
        if self._pid_error is not None:
            return "exclusive", f"could not list GPU processes ({self._pid_error})"
        return "exclusive", None

    def _power_block(self) -> PowerBlock:
        totals_w = [w for _, w in self._ticks if w is not None]
        temps_c = [t for gpu in self.gpus for t in gpu.temps_c]
        utils_pct = [u for gpu in self.gpus for u in gpu.utils_pct]
        if not totals_w:
            return PowerBlock(
                samples=len(self._ticks),
                reason="NVML gave no power readings for the measured GPUs",
            )
        return PowerBlock(
            gpu_avg_w=sum(totals_w) / len(totals_w),
            gpu_max_w=max(totals_w),
            gpu_min_w=min(totals_w),
            gpu_temp_avg_c=sum(temps_c) / len(temps_c) if temps_c else None,
            gpu_temp_max_c=max(temps_c) if temps_c else None,
            gpu_util_avg_pct=sum(utils_pct) / len(utils_pct) if utils_pct else None,
            gpu_util_max_pct=max(utils_pct) if utils_pct else None,
            samples=len(self._ticks),
            sampling_period_s=self._achieved_period_s(),
        )

    def _release(self) -> None:
        try:
            self._nvml.shutdown()
        except NvmlCallError as e:
            logger.debug("NVML shutdown failed: %s", e)


def probe_nvml(
    gpus: Sequence[int] | None, environ: Mapping[str, str], nvml: Any = None
) -> tuple[ProbeResult, list[int]]:
    """Say whether NVML can measure the run's GPUs, and which (NVML indices).

    Raises:
        MeterError: ``gpus`` names a GPU that does not exist (bad input, not a probe gap).
    """
    try:
        api = Nvml(load_nvml() if nvml is None else nvml)
    except MeterError as e:
        return ProbeResult("nvml", False, f"no NVIDIA GPU / NVML not available: {e}"), []
    try:
        api.init()
    except NvmlCallError as e:
        detail = f"no NVIDIA GPU / NVML not available: {e} (is the NVIDIA driver loaded?)"
        return ProbeResult("nvml", False, detail), []
    try:
        try:
            indices = visible_gpu_indices(api, gpus, environ)
        except NvmlCallError as e:
            return ProbeResult("nvml", False, str(e)), []
        except MeterError as e:
            if gpus is not None:
                raise
            return ProbeResult("nvml", False, str(e)), []
        if not indices:
            why = "NVML sees no GPU" if api.device_count() == 0 else "the run is given no GPU"
            detail = f"{why} (CUDA_VISIBLE_DEVICES={environ.get('CUDA_VISIBLE_DEVICES')!r})"
            return ProbeResult("nvml", False, detail), []
        return ProbeResult("nvml", True, ", ".join(_describe(api, i) for i in indices)), indices
    finally:
        try:
            api.shutdown()
        except NvmlCallError as e:
            logger.debug("NVML shutdown failed: %s", e)


def _describe(api: Nvml, index: int) -> str:
    try:
        handle = api.handle(index)
        name = api.name(handle)
    except NvmlCallError as e:
        return f"gpu{index} ({e})"
    try:
        api.total_energy_j(handle)
        method = "energy counter"
    except NvmlCallError:
        method = "no energy counter: integrated power"
    return f"gpu{index} {name} ({method})"
