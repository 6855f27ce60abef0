"""Choosing the meters of each run: exactly the GPUs it is given, checked before it starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hyperjoule.config import OFFLINE_ENV, LoadedStudy, Target
from hyperjoule.errors import PreflightError
from hyperjoule.meters import EstimateMeter, Meter, MeterConfig, create_meters
from hyperjoule.records import RunSpec

__all__ = ["MeterPool", "meter_config", "run_environ"]

logger = logging.getLogger(__name__)


def meter_config(loaded: LoadedStudy) -> MeterConfig:
    """The measurement settings a study asks for (``cpu_watts_per_core``)."""
    if loaded.study.cpu_watts_per_core is None:
        return MeterConfig()
    return MeterConfig(cpu_watts_per_core=loaded.study.cpu_watts_per_core)


def run_environ(spec: RunSpec, target: Target) -> dict[str, str]:
    """The environment a run's process and its meters see (before hyperjoule's own vars).

    A run given ``gpus`` sees exactly those: ``CUDA_VISIBLE_DEVICES`` is set to their
    NVML indices, overriding the inherited value. An ``offline`` target gets
    :data:`~hyperjoule.config.OFFLINE_ENV`.
    """
    env = {**os.environ, **target.env}
    if target.offline:
        env.update(OFFLINE_ENV)
    if spec.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in spec.gpus)
        # NVML numbers GPUs by PCI bus; CUDA by speed unless told otherwise.
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return env


class MeterPool:
    """Meters per GPU selection, created once and shared by the runs that use it.

    Args:
        config: Meter settings; ``gpus`` is replaced per run.
        fixed: Use these meters for every run instead (tests, library callers).
        nvml: A ``pynvml`` stand-in (tests); the real module is loaded lazily.
    """

    def __init__(
        self,
        config: MeterConfig | None = None,
        fixed: Sequence[Meter] | None = None,
        *,
        nvml: Any = None,
    ) -> None:
        self._config = config or MeterConfig()
        self._fixed = list(fixed) if fixed is not None else None
        self._nvml = nvml
        self._pool: dict[tuple[tuple[int, ...] | None, str | None], list[Meter]] = {}

    def for_run(self, spec: RunSpec, environ: Mapping[str, str]) -> list[Meter]:
        """The meters measuring one run (created on first use).

        Raises:
            MeterError: The run asks for a GPU that does not exist.
        """
        if self._fixed is not None:
            return self._fixed
        key = (spec.gpus, environ.get("CUDA_VISIBLE_DEVICES"))
        if key not in self._pool:
            config = MeterConfig(**{**vars(self._config), "gpus": _as_list(spec.gpus)})
            self._pool[key] = create_meters(config, environ, nvml=self._nvml)
        return self._pool[key]

    def preflight(
        self,
        specs: Iterable[RunSpec],
        targets: Mapping[str, Target],
        *,
        allow_estimates: bool,
        study_path: Path,
    ) -> None:
        """Create every run's meters now, so a study never starts half-measured.

        Raises:
            MeterError: A run asks for a GPU that does not exist.
            PreflightError: A component would only be estimated and the study does not
                set ``allow_estimates: true``.
        """
        for spec in specs:
            meters = self.for_run(spec, run_environ(spec, targets[spec.target]))
            if allow_estimates:
                continue
            for meter in meters:
                if isinstance(meter, EstimateMeter):
                    raise PreflightError(
                        f"{study_path}: allow_estimates: CPU package energy could only be "
                        f"estimated from CPU time here ({meter.why}); make the RAPL counters "
                        "readable (see 'hyperjoule doctor') or set 'allow_estimates: true' "
                        "in the study to accept figures labelled estimated"
                    )

    def all_meters(self) -> list[Meter]:
        """Every meter in use (for provenance and closing)."""
        if self._fixed is not None:
            return list(self._fixed)
        return [m for meters in self._pool.values() for m in meters]

    def close(self) -> None:
        """Close the meters this pool created (not the fixed ones, owned by the caller)."""
        for meters in self._pool.values():
            for meter in meters:
                meter.close()
        self._pool.clear()


def _as_list(gpus: tuple[int, ...] | None) -> list[int] | None:
    return list(gpus) if gpus is not None else None
