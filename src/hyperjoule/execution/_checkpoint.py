"""Checkpointing a running attempt, so a killed runner loses seconds, not the attempt."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hyperjoule.errors import StorageError
from hyperjoule.meters import Meter, RunUsage, merge_readings, unavailable_reading
from hyperjoule.storage import AttemptCheckpoint, ResultsStore, utc_timestamp

__all__ = ["CHECKPOINT_PERIOD_S", "AttemptCheckpointer"]

logger = logging.getLogger(__name__)

CHECKPOINT_PERIOD_S = 2.0
"""How often a running attempt's duration, CPU time and energy so far are stored."""


class AttemptCheckpointer:
    """Stores an attempt's accounting so far; pass it as ``run_process(on_progress=...)``.

    Args:
        store: The results database (the run's record must be stored, ``running``).
        run_id: The run.
        attempt: The attempt number.
        meters: The meters whose windows are open around the attempt.
    """

    def __init__(self, store: ResultsStore, run_id: str, attempt: int, meters: Sequence[Meter]):
        self._store = store
        self._run_id = run_id
        self._attempt = attempt
        self._meters = list(meters)
        self._started_at = utc_timestamp()

    def __call__(self, duration_s: float, cpu_time_s: float | None) -> None:
        """Take the meters' readings so far and store them with the duration."""
        usage = RunUsage(duration_s=duration_s, cpu_time_s=cpu_time_s)
        readings = []
        for meter in self._meters:
            reading = meter.peek(usage)
            if reading is None:
                why = f"meter {meter.name!r} gives no reading before its window closes"
                reading = unavailable_reading(meter.components, why)
            readings.append(reading)
        energy, _ = merge_readings(readings)
        energy.partial = True
        checkpoint = AttemptCheckpoint(
            self._attempt, self._started_at, utc_timestamp(), duration_s, cpu_time_s, energy
        )
        try:
            self._store.checkpoint_run(self._run_id, checkpoint)
        except StorageError as e:  # a busy or full disk must not stop the run itself
            logger.warning("run %s: checkpoint not stored: %s", self._run_id, e)
