"""Choosing the meters of each run: exactly the GPUs it is given, checked before it starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from hyperjoule.config import OFFLINE_ENV, LoadedStudy, Target
from hyperjoule.devices import NodeDevices
from hyperjoule.errors import PreflightError
from hyperjoule.meters import EstimateMeter, MeterConfig
from hyperjoule.records import RunSpec

__all__ = ["meter_config", "preflight_meters", "run_environ"]

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


def preflight_meters(
    devices: NodeDevices,
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
        meters = devices.meters_for(spec.gpus, run_environ(spec, targets[spec.target]))
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
