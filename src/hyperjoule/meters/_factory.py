"""Finding the meters this machine supports: probes and an explicit factory (no singletons)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperjoule.errors import MeterError
from hyperjoule.meters._base import Meter, ProbeResult
from hyperjoule.meters._estimate import DEFAULT_CPU_WATTS_PER_CORE, EstimateMeter, UnavailableMeter
from hyperjoule.meters._nvml import NvmlMeter, probe_nvml
from hyperjoule.meters._rapl import RaplMeter, probe_rapl

__all__ = ["MeterConfig", "ProbeResult", "create_meters", "probe_meters"]

logger = logging.getLogger(__name__)


@dataclass
class MeterConfig:
    """What to measure and how.

    Attributes:
        cpu_watts_per_core: Power of one busy core in watts, for the CPU estimate.
        sampling_period_s: GPU timeline sampling period, in seconds.
        gpus: NVML indices of the GPUs to measure; None: those in
            ``CUDA_VISIBLE_DEVICES``, or all when it is unset.
        powercap_root: Where the powercap sysfs tree lives.
        use_rapl: Measure CPU package and DRAM energy with RAPL counters.
        use_gpu: Measure GPU energy with NVML.
        estimate_cpu: Estimate CPU package energy from CPU time when RAPL is unusable.
        rapl_poll_s: Period of the RAPL wrap-detection poll, in seconds.
    """

    cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE
    sampling_period_s: float = 0.1
    gpus: list[int] | None = None
    powercap_root: Path = field(default_factory=lambda: Path("/sys/class/powercap"))
    use_rapl: bool = True
    use_gpu: bool = True
    estimate_cpu: bool = True
    rapl_poll_s: float = 1.0


def probe_meters(
    config: MeterConfig, environ: Mapping[str, str] | None = None, *, nvml: Any = None
) -> list[ProbeResult]:
    """Say which meters this machine supports and why (for ``hyperjoule doctor``).

    Never raises: a missing sensor or library, and a bad ``gpus`` setting, are reported
    in the results. Arguments are those of :func:`create_meters`.
    """
    probe = _Probe(config, environ, nvml, create=False)
    return probe.results


def create_meters(
    config: MeterConfig, environ: Mapping[str, str] | None = None, *, nvml: Any = None
) -> list[Meter]:
    """Create the meters this machine supports, best first.

    GPU energy comes from NVML when ``pynvml`` loads and finds GPUs; CPU package and
    DRAM energy from RAPL when readable powercap domains exist; without RAPL the CPU
    package is estimated from CPU time (when ``estimate_cpu``). Every component no meter
    can measure is covered by an :class:`UnavailableMeter` that gives the reason.

    Args:
        config: What to measure.
        environ: Environment to read ``CUDA_VISIBLE_DEVICES`` from; ``os.environ`` by
            default.
        nvml: The ``pynvml`` module or a stand-in (tests); imported lazily when None.

    Raises:
        MeterError: ``config.gpus`` names a GPU that does not exist. Missing sensors and
            libraries never raise: their components come back unavailable with the reason.
    """
    return _Probe(config, environ, nvml, create=True).meters


class _Probe:
    """Runs every probe once and derives both the probe report and the meters."""

    def __init__(
        self, config: MeterConfig, environ: Mapping[str, str] | None, nvml: Any, *, create: bool
    ) -> None:
        self.config = config
        self.environ = os.environ if environ is None else environ
        self.nvml = nvml
        self.create = create
        self.results: list[ProbeResult] = []
        self.meters: list[Meter] = []
        # Component -> reason it cannot be measured (filled by the probes below).
        self.missing: dict[str, str] = {}
        self._probe_gpu()
        self._probe_cpu()
        if self.missing:
            self.meters.append(UnavailableMeter(self.missing))
        for result in self.results:
            logger.info(
                "meter probe %s: %s (%s)",
                result.name,
                "available" if result.available else "unavailable",
                result.detail,
            )

    def _probe_gpu(self) -> None:
        if not self.config.use_gpu:
            self.missing["gpu"] = "GPU measurement disabled (use_gpu=False)"
            return
        try:
            result, indices = probe_nvml(self.config.gpus, self.environ, self.nvml)
        except MeterError as e:
            if self.create:
                raise
            result, indices = ProbeResult("nvml", False, str(e)), []
        self.results.append(result)
        if result.available and self.create:
            try:
                self.meters.append(NvmlMeter(indices, self.config.sampling_period_s, self.nvml))
                return
            except MeterError as e:
                logger.info("NVML meter could not be created: %s", e)
                result = self.results[-1] = ProbeResult("nvml", False, str(e))
        if not result.available:
            self.missing["gpu"] = result.detail

    def _probe_cpu(self) -> None:
        if self.config.use_rapl:
            rapl = probe_rapl(self.config.powercap_root)
            self.results.append(rapl)
            if rapl.available:
                self.meters.append(RaplMeter(self.config.powercap_root, self.config.rapl_poll_s))
                return
            rapl_reason = rapl.detail
        else:
            rapl_reason = "RAPL disabled (use_rapl=False)"
        self.missing["cpu_dram"] = f"no RAPL DRAM domain: {rapl_reason}"
        if self.config.estimate_cpu:
            self.meters.append(
                EstimateMeter(self.config.cpu_watts_per_core, why=rapl_reason, unavailable={})
            )
            self.results.append(
                ProbeResult(
                    "estimate",
                    True,
                    f"CPU time x {self.config.cpu_watts_per_core:g} W per busy core",
                )
            )
        else:
            self.missing["cpu_pkg"] = f"{rapl_reason}; CPU estimate disabled (estimate_cpu=False)"
