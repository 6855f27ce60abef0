"""Checkpointing a running attempt, so a killed runner loses seconds, not the attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hyperjoule.meters import MeterReading, RunUsage, merge_readings
from hyperjoule.storage import AttemptCheckpoint, utc_timestamp

__all__ = [
    "CHECKPOINT_PERIOD_S",
    "FIRST_CHECKPOINT_S",
    "AttemptCheckpointer",
    "CheckpointSink",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PERIOD_S = 2.0
"""How often a running attempt's duration, CPU time and energy so far are stored."""

FIRST_CHECKPOINT_S = 0.5
"""When an attempt's first checkpoint is stored: a runner killed in an attempt's first
seconds still leaves the attempt (its start, duration and CPU time) in the record."""

CheckpointSink = Callable[[AttemptCheckpoint], None]
"""Stores a checkpoint (the coordinator's database writer)."""


class AttemptCheckpointer:
    """Builds an attempt's checkpoints; pass it as ``run_process(on_progress=...)``.

    Args:
        attempt: The attempt number.
        peek: The open window's readings so far for a usage so far.
        sink: Stores each checkpoint. Its failures are logged, never raised: a full or
            busy disk must not stop the training run itself.
    """

    def __init__(
        self,
        attempt: int,
        peek: Callable[[RunUsage], list[MeterReading]],
        sink: CheckpointSink,
    ) -> None:
        self._attempt = attempt
        self._peek = peek
        self._sink = sink
        self._started_at = utc_timestamp()

    def __call__(self, duration_s: float, cpu_time_s: float | None) -> None:
        """Take the readings so far and hand them, with the duration, to the sink."""
        try:
            energy, _ = merge_readings(self._peek(RunUsage(duration_s, cpu_time_s)))
            energy.partial = True
            self._sink(
                AttemptCheckpoint(
                    self._attempt, self._started_at, utc_timestamp(), duration_s, cpu_time_s, energy
                )
            )
        except Exception as e:
            logger.warning("attempt %d: checkpoint not stored: %s", self._attempt, e)
