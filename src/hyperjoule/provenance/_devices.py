"""Provenance of the measured devices and the ML frameworks installed.

Like the rest of provenance this never fails: what cannot be read is None, and for the
GPUs ``gpu_reason`` says why. Framework versions come from package metadata, so no
framework is imported (importing torch alone takes seconds and initialises CUDA).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from hyperjoule.errors import MeterError
from hyperjoule.meters._nvml_api import NvmlCallError, load_nvml, visible_gpu_indices
from hyperjoule.meters._nvml_info import NvmlInfo
from hyperjoule.provenance._collect import _cpu_model

__all__ = ["collect_devices", "framework_versions"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_GPU_FACTS = ("index", "name", "uuid", "memory_total_mib", "power_limit_w")

# Framework → distributions that provide it, in the order they are looked up.
_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "jax": ("jax",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"),
    "transformers": ("transformers",),
    "numpy": ("numpy",),
}


def framework_versions() -> dict[str, str | None]:
    """Installed versions of torch, jax, tensorflow, transformers and numpy (None: absent)."""
    versions: dict[str, str | None] = {}
    for framework, distributions in _FRAMEWORKS.items():
        versions[framework] = None
        for dist in distributions:
            try:
                versions[framework] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def collect_devices(
    nvml: Any = None,
    gpu_indices: Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Describe the CPU, OS and the measured GPUs with their driver, CUDA and NVML versions.

    Args:
        nvml: The ``pynvml`` module or a stand-in; imported lazily when None.
        gpu_indices: NVML indices of the measured GPUs; None: those in
            ``CUDA_VISIBLE_DEVICES``, or all.
        environ: Environment for ``CUDA_VISIBLE_DEVICES``; ``os.environ`` by default.

    Returns:
        ``cpu_model``, ``os``, ``gpus`` (one dict per GPU: ``index``, ``name``, ``uuid``,
        ``memory_total_mib``, ``power_limit_w``), ``gpu_driver_version``,
        ``cuda_driver_version``, ``nvml_version`` and ``gpu_reason`` (None when the GPU
        facts were read, else why not).
    """
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "os": platform.platform(),
        "gpus": [],
        "gpu_driver_version": None,
        "cuda_driver_version": None,
        "nvml_version": None,
        "gpu_reason": None,
    }
    try:
        api = NvmlInfo(load_nvml() if nvml is None else nvml)
        api.init()
    except MeterError as e:
        info["gpu_reason"] = f"no NVIDIA GPU / NVML not available: {e}"
        return info
    try:
        _collect_gpus(api, info, gpu_indices, os.environ if environ is None else environ)
    finally:
        with contextlib.suppress(NvmlCallError):
            api.shutdown()
    return info


def _collect_gpus(
    api: NvmlInfo,
    info: dict[str, Any],
    gpu_indices: Sequence[int] | None,
    environ: Mapping[str, str],
) -> None:
    problems: list[str] = []
    info["gpu_driver_version"] = _attempt(problems, api.driver_version)
    info["cuda_driver_version"] = _attempt(problems, api.cuda_driver_version)
    info["nvml_version"] = _attempt(problems, api.nvml_version)
    try:
        indices = visible_gpu_indices(api, gpu_indices, environ)
    except MeterError as e:
        info["gpu_reason"] = str(e)
        return
    for index in indices:
        gpu: dict[str, Any] = dict.fromkeys(_GPU_FACTS)
        gpu["index"] = index
        handle = _attempt(problems, api.handle, index)
        if handle is not None:
            gpu["name"] = _attempt(problems, api.name, handle)
            gpu["uuid"] = _attempt(problems, api.uuid, handle)
            gpu["memory_total_mib"] = _attempt(problems, api.memory_total_mib, handle)
            gpu["power_limit_w"] = _attempt(problems, api.power_limit_w, handle)
        info["gpus"].append(gpu)
    if not indices:
        problems.insert(0, "no GPU given to the runs")
    if problems:
        info["gpu_reason"] = "; ".join(dict.fromkeys(problems))


def _attempt(problems: list[str], read: Callable[..., T], *args: Any) -> T | None:
    """Call ``read``; on an NVML failure note it in ``problems`` and return None."""
    try:
        return read(*args)
    except NvmlCallError as e:
        problems.append(str(e))
        return None
