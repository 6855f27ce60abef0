"""Creating the executor a study asks for (``executor:`` and ``--jobs``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyperjoule.config import ExecutorConfig
from hyperjoule.devices import NodeDevices, node_gpus
from hyperjoule.errors import PreflightError
from hyperjoule.execution._executor import Executor
from hyperjoule.execution._local import LocalExecutor
from hyperjoule.execution._power import GpuPowerLimits
from hyperjoule.execution._tracking import GroupTracker

__all__ = ["EXECUTORS", "ExecutorMaker", "create_executor"]

ExecutorMaker = Callable[..., Executor]
"""``(config, *, devices, tracker, results_dir, allow_estimates) -> Executor``."""


def _local(
    config: ExecutorConfig,
    *,
    devices: NodeDevices,
    tracker: GroupTracker | None,
    power_limits: GpuPowerLimits | None = None,
    **_: object,
) -> Executor:
    gpus: tuple[int, ...] = ()
    if config.gpus_per_run > 0:
        gpus = node_gpus()
        if len(gpus) < config.gpus_per_run:
            raise PreflightError(
                f"executor: gpus_per_run: {config.gpus_per_run}, but this machine gives runs "
                f"{len(gpus)} GPU(s) (NVML, CUDA_VISIBLE_DEVICES); lower gpus_per_run or "
                "remove it to run without GPUs of their own"
            )
    return LocalExecutor(
        devices,
        jobs=config.jobs,
        gpus=gpus,
        gpus_per_run=config.gpus_per_run,
        tracker=tracker,
        power_limits=power_limits,
    )


def _ray(config: ExecutorConfig, **kwargs: Any) -> Executor:
    # The Ray executor lives in its own module with a lazy import of ray.
    from hyperjoule.execution import _ray

    kwargs.pop("power_limits", None)  # set on this machine's GPUs only
    maker: ExecutorMaker | None = getattr(_ray, "create_ray_executor", None)
    if maker is None:
        raise PreflightError("executor: kind: ray is not available in this version")
    return maker(config, **kwargs)


EXECUTORS: dict[str, ExecutorMaker] = {"local": _local, "ray": _ray}
"""Executor kind → maker; ``executor.kind`` picks one."""


def create_executor(
    config: ExecutorConfig,
    *,
    devices: NodeDevices,
    tracker: GroupTracker | None = None,
    results_dir: Path,
    allow_estimates: bool,
    power_limits: GpuPowerLimits | None = None,
) -> Executor:
    """The executor ``config`` describes, ready to take tasks.

    Called before anything is written, so a refusal leaves no trace.

    Raises:
        PreflightError: It cannot run here (more GPUs per run than the machine has, no
            Ray cluster at the address, ...).
    """
    return EXECUTORS[config.kind](
        config,
        devices=devices,
        tracker=tracker,
        results_dir=results_dir,
        allow_estimates=allow_estimates,
        power_limits=power_limits,
    )
