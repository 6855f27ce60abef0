"""Idle baseline: the power the measured devices draw with no run, and cooling down to it.

A :class:`Baseline` is measured by opening the same meters' window over an idle wait
(no process). A run's *net* (dynamic) energy is its gross energy minus the idle power
times its duration (:func:`net_energy`). Between runs, :func:`wait_until_idle` waits
until the GPUs have cooled to the baseline temperature, so that each run starts from
the same thermal state. Baselines are kept as JSON under ``<results>/baselines/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hyperjoule.errors import MeterError, StorageError
from hyperjoule.meters._base import Meter, RunUsage, merge_readings
from hyperjoule.meters._estimate import EstimateMeter
from hyperjoule.meters._nvml_api import Nvml, NvmlCallError, load_nvml, visible_gpu_indices
from hyperjoule.records import ENERGY_COMPONENTS, EnergyComponent
from hyperjoule.storage._layout import atomic_write_text

__all__ = [
    "BASELINES_DIRNAME",
    "Baseline",
    "GpuTemperatureReader",
    "gpu_temperature_reader",
    "load_latest_baseline",
    "measure_baseline",
    "net_energy",
    "net_energy_with_reason",
    "save_baseline",
    "wait_until_idle",
]

logger = logging.getLogger(__name__)

BASELINES_DIRNAME = "baselines"
LATEST_FILENAME = "latest.json"
ESTIMATE_REASON = (
    "an estimate counts only the run's own CPU time, so it holds no idle share to subtract"
)


@dataclass
class Baseline:
    """Idle power of the measured devices over one quiet window.

    Attributes:
        measured_at: When the window opened (ISO 8601, UTC).
        duration_s: Length of the window, in seconds.
        power_w: Component → mean idle power in watts (energy / duration); None when
            the component could not be measured (see ``reasons``).
        methods: Component → method of the underlying energy figure.
        devices: Component → devices measured (a run's net energy is only computed
            against a baseline of the same devices).
        reasons: Component → why it is unavailable, or a caveat (``combined``: other
            processes used the GPU, so the figure is not truly idle).
        gpu_temp_c: Mean GPU temperature over the window, in °C (None without GPU
            timeline); the target of :func:`wait_until_idle`.
        hostname: Machine the baseline was measured on.
    """

    measured_at: str
    duration_s: float
    power_w: dict[str, float | None]
    methods: dict[str, str]
    devices: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    gpu_temp_c: float | None = None
    hostname: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """Rebuild a baseline written by :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def measure_baseline(
    meters: Sequence[Meter],
    duration_s: float,
    run_dir: Path | None = None,
    *,
    stop: threading.Event | None = None,
) -> Baseline:
    """Measure the idle power of the meters' devices over ``duration_s`` seconds.

    Opens every meter's window, waits without starting any process, and closes them;
    the meters stay open for further use (the caller closes them). Nothing else should
    run on the machine meanwhile: whatever runs is counted as idle.

    Args:
        meters: The meters a study would use (from :func:`create_meters`).
        duration_s: Length of the idle window, in seconds.
        run_dir: Where the meters may write their timelines (``energy/*.csv``); a
            temporary directory, removed afterwards, when None.
        stop: Set it to end the window early; the baseline then covers the time waited.

    Raises:
        ValueError: ``duration_s`` is not positive.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    stop = threading.Event() if stop is None else stop
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hj-idle-")))
        measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        t0_s = time.monotonic()
        started: list[Meter] = []
        try:
            for meter in meters:
                meter.start(run_dir)
                started.append(meter)
            stop.wait(duration_s)
        finally:
            waited_s = time.monotonic() - t0_s
            # No process ran: an estimate meter has no CPU time to count.
            readings = [m.stop(RunUsage(duration_s=waited_s, cpu_time_s=None)) for m in started]
    energy, power = merge_readings(readings)
    # An estimate meter estimates only the CPU package; its other components are gaps.
    estimated = {"cpu_pkg"} if any(isinstance(m, EstimateMeter) for m in meters) else set()
    baseline = Baseline(
        measured_at=measured_at,
        duration_s=waited_s,
        power_w={},
        methods={},
        gpu_temp_c=power.gpu_temp_avg_c,
        hostname=socket.gethostname(),
    )
    for name in ENERGY_COMPONENTS:
        comp = energy.get(name)
        reason = comp.reason
        idle_w = None
        if comp.energy_j is None and name in estimated:
            reason = ESTIMATE_REASON
        elif comp.energy_j is not None and waited_s > 0:
            idle_w = comp.energy_j / waited_s
        elif comp.energy_j is not None:
            reason = "the idle window was stopped before any time passed"
        baseline.power_w[name] = idle_w
        baseline.methods[name] = comp.method if idle_w is not None else "unavailable"
        baseline.devices[name] = list(comp.devices)
        if reason:
            baseline.reasons[name] = reason
    logger.info("idle baseline over %.1f s: %s", waited_s, baseline.power_w)
    return baseline


def net_energy_with_reason(
    component: EnergyComponent,
    duration_s: float,
    baseline: Baseline,
    *,
    name: str | None = None,
) -> tuple[float | None, str | None]:
    """A run's net (dynamic) energy in joules, or None with the reason there is none.

    Net energy is ``energy_j - idle_power_w * duration_s``. It is **not clamped**: a
    negative value means the run drew less than the baseline (measurement noise on a
    short run, or a baseline taken while the machine was not idle), which a clamp to
    zero would hide. Callers record it as it is.

    Args:
        component: The run's gross energy of one component.
        duration_s: The run's duration, in seconds.
        baseline: The idle baseline.
        name: The component's name (``gpu``, ``cpu_pkg``, ``cpu_dram``); when None it is
            found as the baseline component measured on the same devices.
    """
    if component.energy_j is None:
        return None, "no gross energy to subtract the baseline from"
    if component.method == "estimated":
        return None, ESTIMATE_REASON
    if name is None:
        matches = [n for n, d in baseline.devices.items() if d and d == component.devices]
        if len(matches) != 1:
            devices = ", ".join(component.devices) or "no devices"
            return None, f"the baseline did not measure the same devices ({devices})"
        name = matches[0]
    elif baseline.devices.get(name) != component.devices:
        return None, (
            f"the baseline measured {name} on {baseline.devices.get(name) or 'no devices'}, "
            f"the run on {component.devices}; measure a new baseline"
        )
    idle_w = baseline.power_w.get(name)
    if idle_w is None:
        why = baseline.reasons.get(name, "not measured")
        return None, f"the baseline has no idle power for {name} ({why})"
    return component.energy_j - idle_w * duration_s, None


def net_energy(
    component: EnergyComponent,
    duration_s: float,
    baseline: Baseline,
    *,
    name: str | None = None,
) -> float | None:
    """A run's net energy in joules (gross - idle power x duration; may be negative).

    See :func:`net_energy_with_reason`, which also says why the result is None.
    """
    return net_energy_with_reason(component, duration_s, baseline, name=name)[0]


def save_baseline(results_dir: Path, baseline: Baseline) -> Path:
    """Write ``baselines/<timestamp>.json`` and replace ``baselines/latest.json``.

    Both writes are atomic. Returns the timestamped file.

    Raises:
        StorageError: The files cannot be written.
    """
    directory = Path(results_dir) / BASELINES_DIRNAME
    try:
        stamp = datetime.fromisoformat(baseline.measured_at).strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}.json"
    suffix = 1
    while path.exists():  # two baselines within one second keep both
        suffix += 1
        path = directory / f"{stamp}-{suffix}.json"
    text = json.dumps(baseline.to_dict(), indent=2) + "\n"
    atomic_write_text(path, text)
    atomic_write_text(directory / LATEST_FILENAME, text)
    return path


def load_latest_baseline(results_dir: Path, *, any_host: bool = False) -> Baseline | None:
    """Return the newest baseline saved under ``results_dir``; None when there is none.

    Args:
        results_dir: The results directory.
        any_host: Also accept a baseline measured on another machine (a shared results
            directory); by default such a baseline is ignored, as idle power is per machine.

    Raises:
        StorageError: ``latest.json`` exists but cannot be read or parsed.
    """
    path = Path(results_dir) / BASELINES_DIRNAME / LATEST_FILENAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        baseline = Baseline.from_dict(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise StorageError(
            f"{path}: not a readable baseline ({e}); delete it or run 'hyperjoule baseline'"
        ) from e
    if not any_host and baseline.hostname not in (None, socket.gethostname()):
        logger.info("ignoring baseline %s: measured on %s", path, baseline.hostname)
        return None
    return baseline


def wait_until_idle(
    read_temp_c: Callable[[], float | None],
    target_c: float,
    within_c: float,
    max_s: float,
    stop: threading.Event,
    poll_s: float = 1.0,
) -> tuple[bool, float]:
    """Wait until the GPU temperature is at most ``target_c + within_c``, or ``max_s``.

    For ``cooldown: {max_s: 120, until_gpu_temp_within_c: 3}`` with ``target_c`` the
    baseline's ``gpu_temp_c``. A GPU cooler than the target counts as idle. A reading of
    None (sensor failed) never counts as idle, so without readings this is a fixed
    ``max_s`` cooldown.

    Returns:
        Whether the temperature was reached, and the seconds waited (monotonic clock).
        ``stop`` being set ends the wait early with ``reached`` False.
    """
    t0_s = time.monotonic()
    while True:
        waited_s = time.monotonic() - t0_s
        temp_c = read_temp_c()
        if temp_c is not None and temp_c <= target_c + within_c:
            return True, waited_s
        remaining_s = max_s - waited_s
        if remaining_s <= 0 or stop.is_set():
            return False, waited_s
        if stop.wait(min(poll_s, remaining_s)):
            return False, time.monotonic() - t0_s


class GpuTemperatureReader:
    """Callable that returns the hottest given GPU's temperature in °C (None: no reading).

    Holds an NVML initialisation until :meth:`close` (also a context manager).
    """

    def __init__(self, api: Nvml, indices: Sequence[int]) -> None:
        self._api = api
        self.indices = list(indices)
        self._handles = [api.handle(i) for i in self.indices]
        self._closed = False

    def __call__(self) -> float | None:
        temps_c: list[float] = []
        for handle in self._handles:
            try:
                temps_c.append(self._api.temperature_c(handle))
            except NvmlCallError as e:
                logger.debug("GPU temperature unreadable: %s", e)
        return max(temps_c) if temps_c else None

    def utilization_pct(self) -> float | None:
        """Mean GPU utilisation of the given GPUs in percent (None: no reading)."""
        values: list[float] = []
        for handle in self._handles:
            try:
                values.append(self._api.utilization_pct(handle)[0])
            except NvmlCallError as e:
                logger.debug("GPU utilisation unreadable: %s", e)
        return sum(values) / len(values) if values else None

    def close(self) -> None:
        """Release the NVML initialisation; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._api.shutdown()
        except NvmlCallError as e:
            logger.debug("NVML shutdown failed: %s", e)

    def __enter__(self) -> GpuTemperatureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def gpu_temperature_reader(
    nvml: Any = None,
    gpu_indices: Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> GpuTemperatureReader | None:
    """A reader of the given GPUs' maximum temperature; None when NVML is not usable.

    Args:
        nvml: The ``pynvml`` module or a stand-in; imported lazily when None.
        gpu_indices: NVML indices; None: the GPUs in ``CUDA_VISIBLE_DEVICES``, or all.
        environ: Environment for ``CUDA_VISIBLE_DEVICES``; ``os.environ`` by default.

    Raises:
        MeterError: ``gpu_indices`` names a GPU that does not exist.
    """
    try:
        api = Nvml(load_nvml() if nvml is None else nvml)
        api.init()
    except MeterError as e:  # no pynvml, or NVML cannot start (no driver)
        logger.debug("no GPU temperature reader: %s", e)
        return None
    try:
        indices = visible_gpu_indices(api, gpu_indices, os.environ if environ is None else environ)
        if not indices:
            api.shutdown()
            return None
        return GpuTemperatureReader(api, indices)
    except NvmlCallError as e:
        logger.debug("no GPU temperature reader: %s", e)
        with contextlib.suppress(NvmlCallError):
            api.shutdown()
        return None
    except BaseException:
        with contextlib.suppress(NvmlCallError):
            api.shutdown()
        raise
