"""The GPU power limit as a hyperparameter: set through NVML per run, always restored.

A target may declare ``gpu_power_limit_w`` (no flag; fixed or searched). Before each
attempt the limit is set on the run's GPUs; afterwards every GPU gets back the limit it
had before the study touched it. Should the runner die (even by SIGKILL), the orphan
watchdog runs :mod:`hyperjoule.execution._power_restore` for every GPU still changed.
Like the CPU governor, a limit that cannot be set (no permission: NVML wants root) stops
the study before anything is written, with the fix, unless
``system.continue_without_permission`` lets runs go on at the current limit (recorded).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hyperjoule.config import SystemSettings
from hyperjoule.errors import MeterError, PreflightError
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.execution._system import refuse_or_skip
from hyperjoule.meters._nvml_api import Nvml, NvmlCallError, load_nvml, visible_gpu_indices
from hyperjoule.records import RunSpec

__all__ = ["POWER_KNOB", "GpuPowerLimits"]

logger = logging.getLogger(__name__)

POWER_KNOB = "gpu_power_limit_w"


class GpuPowerLimits:
    """Sets each run's ``gpu_power_limit_w`` and restores the previous limits.

    Args:
        settings: The study's system settings (``continue_without_permission``).
        nvml: A ``pynvml`` stand-in (tests); the real module is loaded when needed.
        reaper: The watchdog that restores the limits if the runner dies.
    """

    def __init__(
        self, settings: SystemSettings, nvml: Any = None, reaper: GroupReaper | None = None
    ) -> None:
        self.settings = settings
        self.reaper = reaper
        self._module = nvml
        self._api: Nvml | None = None
        self.previous_w: dict[int, float] = {}  # NVML index -> limit before the study
        self.uuids: dict[int, str] = {}
        self.skipped: list[str] = []

    def _nvml(self) -> Nvml:
        if self._api is None:
            api = Nvml(load_nvml() if self._module is None else self._module)
            api.init()
            self._api = api
        return self._api

    def check(self, specs: Iterable[RunSpec], environ: Mapping[str, str]) -> None:
        """Refuse, before anything runs, limits this machine cannot apply.

        Raises:
            PreflightError: No NVML or GPU, a limit outside the board's range, or no
                permission (unless the study continues without it).
        """
        wanted = [s for s in specs if POWER_KNOB in s.hyperparameters]
        if not wanted:
            return
        try:
            api = self._nvml()
            for spec in wanted:
                limit_w = float(spec.hyperparameters[POWER_KNOB])
                for index in visible_gpu_indices(api, spec.gpus, environ):
                    handle = api.handle(index)
                    low_w, high_w = api.power_limit_range_w(handle)
                    if not low_w <= limit_w <= high_w:
                        raise PreflightError(
                            f"{POWER_KNOB}: {limit_w:g} W is outside GPU {index}'s range "
                            f"[{low_w:g}, {high_w:g}] W; narrow the hyperparameter's range"
                        )
            # Writing the limit in force changes nothing but needs the same permission.
            for index in visible_gpu_indices(api, wanted[0].gpus, environ):
                handle = api.handle(index)
                api.set_power_limit_w(handle, api.power_limit_w(handle))
        except NvmlCallError as e:
            reason = f"{POWER_KNOB}: cannot set the GPU power limit ({e})"
            if e.no_permission:
                reason += (
                    "; NVML needs root for it: run the study as root, or fix a limit "
                    "beforehand with 'sudo nvidia-smi -pl WATTS' and remove the knob"
                )
            self._refuse(reason)
        except MeterError as e:
            self._refuse(f"{POWER_KNOB}: {e}")

    def _refuse(self, reason: str) -> None:
        refuse_or_skip(self.settings, self.skipped, reason)

    def apply(self, spec: RunSpec, environ: Mapping[str, str]) -> dict[str, Any] | None:
        """Set the run's limit on its GPUs; return what was done (for the record)."""
        if POWER_KNOB not in spec.hyperparameters:
            return None
        return self.apply_limit(float(spec.hyperparameters[POWER_KNOB]), spec.gpus, environ)

    def apply_limit(
        self, limit_w: float, gpus_wanted: Sequence[int] | None, environ: Mapping[str, str]
    ) -> dict[str, Any]:
        """Set ``limit_w`` on the given GPUs (None: those of ``environ``); say what was done."""
        if self.skipped:
            return {"limit_w": limit_w, "applied": False, "reason": self.skipped[0]}
        api = self._nvml()
        gpus = visible_gpu_indices(api, gpus_wanted, environ)
        for index in gpus:
            handle = api.handle(index)
            if index not in self.previous_w:
                self.previous_w[index] = api.power_limit_w(handle)
                self.uuids[index] = api.uuid(handle)
                if self.reaper is not None:
                    self.reaper.run_on_death(
                        f"gpu-power-{index}",
                        [
                            sys.executable,
                            "-m",
                            "hyperjoule.execution._power_restore",
                            self.uuids[index],
                            str(self.previous_w[index]),
                        ],
                    )
            api.set_power_limit_w(handle, limit_w)
        logger.info("GPU power limit %g W on GPU(s) %s", limit_w, gpus)
        return {"limit_w": limit_w, "applied": True, "gpus": gpus}

    def restore(self, gpus: Iterable[int] | None = None) -> None:
        """Give the GPUs changed (or those of ``gpus``) their limit from before the study.

        Idempotent. Concurrent runs on other GPUs keep their limits when ``gpus`` is given.
        """
        if self._api is None:
            return
        only = set(gpus) if gpus is not None else None
        for index, limit_w in list(self.previous_w.items()):
            if only is not None and index not in only:
                continue
            try:
                self._api.set_power_limit_w(self._api.handle(index), limit_w)
            except NvmlCallError as e:
                logger.error(
                    "could not restore GPU %d's power limit to %g W: %s", index, limit_w, e
                )
                continue
            if self.reaper is not None:
                self.reaper.forget_on_death(f"gpu-power-{index}")
            del self.previous_w[index]

    def close(self) -> None:
        """Restore the limits and release NVML."""
        self.restore()
        if self._api is not None:
            try:
                self._api.shutdown()
            except NvmlCallError as e:
                logger.debug("NVML shutdown: %s", e)
            self._api = None
