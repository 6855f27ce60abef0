"""Cooling devices down between attempts: a fixed pause, or until the GPUs are near idle.

The pause is owed by the devices an attempt used and paid by the next attempt placed on
them (so the last run of a study waits for nothing); what happened goes into that next
attempt's ``provenance.cooldown_before``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from hyperjoule.execution._task import CooldownPolicy
from hyperjoule.meters import Baseline, gpu_temperature_reader, wait_until_idle

__all__ = ["DeviceCooldown"]

logger = logging.getLogger(__name__)


class DeviceCooldown:
    """Owed pauses per device token (``gpu:<index>`` or ``cpu``).

    Args:
        baseline: Idle baseline (its GPU temperature is the until-idle target).
        stop: Ends any wait early.
    """

    def __init__(self, baseline: Baseline | None, stop: threading.Event) -> None:
        self.baseline = baseline
        self._stop = stop
        self._lock = threading.Lock()
        self._owed: dict[str, tuple[float, CooldownPolicy]] = {}  # token -> (ended_s, policy)

    def owe(self, tokens: list[str], policy: CooldownPolicy | None) -> None:
        """The attempt on ``tokens`` just ended; the next one there cools down first."""
        if policy is None or not policy.active:
            return
        now_s = time.monotonic()
        with self._lock:
            for token in tokens:
                self._owed[token] = (now_s, policy)

    def pay(self, tokens: list[str], gpus: tuple[int, ...] | None) -> dict[str, Any] | None:
        """Wait what ``tokens`` owe before an attempt starts on them; say what happened."""
        with self._lock:
            owed = [self._owed.pop(t) for t in tokens if t in self._owed]
        if not owed:
            return None
        ended_s = max(e for e, _ in owed)
        policy = next(p for e, p in owed if e == ended_s)
        if policy.until_idle_max_s is None or policy.until_idle_within_c is None:
            remaining_s = max(0.0, ended_s + policy.fixed_s - time.monotonic())
            self._stop.wait(remaining_s)
            return {"kind": "fixed", "waited_s": policy.fixed_s}
        return self._until_idle(policy.until_idle_max_s, policy.until_idle_within_c, gpus)

    def _until_idle(
        self, max_s: float, within_c: float, gpus: tuple[int, ...] | None
    ) -> dict[str, Any]:
        reader = gpu_temperature_reader(gpu_indices=list(gpus) if gpus is not None else None)
        target_c = self.baseline.gpu_temp_c if self.baseline is not None else None
        try:
            if reader is None or target_c is None:
                why = (
                    "no GPU temperature sensor"
                    if reader is None
                    else "no idle baseline temperature"
                )
                logger.info("cooldown: %s; waiting the maximum %.0f s", why, max_s)
                self._stop.wait(max_s)
                return {"kind": "until_idle", "reached": False, "waited_s": max_s, "reason": why}
            reached, waited_s = wait_until_idle(reader, target_c, within_c, max_s, self._stop)
            return {
                "kind": "until_idle",
                "reached": reached,
                "waited_s": waited_s,
                "target_gpu_temp_c": target_c + within_c,
            }
        finally:
            if reader is not None:
                reader.close()
