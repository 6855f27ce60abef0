"""Checkpoints of a running attempt: what a killed runner had measured so far.

While an attempt runs, its runner writes a small checkpoint into the run's stored record
every few seconds (``$.checkpoint`` of ``record_json``): when the attempt started, how
long it has run, its CPU time and its energy so far. A runner killed with SIGKILL (or a
machine that lost power) thus loses at most one period of accounting: the next ``run``
of the study turns the record ``interrupted`` with the figures of the last checkpoint,
labelled ``energy.partial``, and adds the attempt to ``attempt_log`` so the study's cost
includes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperjoule.records import AttemptEntry, EnergyBlock, RunRecord, RunStatus

__all__ = ["AttemptCheckpoint", "apply_checkpoint"]


@dataclass(frozen=True)
class AttemptCheckpoint:
    """An attempt's accounting so far.

    Attributes:
        attempt: Attempt number.
        started_at: UTC timestamp when the attempt's process started.
        at: UTC timestamp of this checkpoint.
        duration_s: Seconds the process had run.
        cpu_time_s: CPU time of its processes so far, in seconds (None: unknown).
        energy: Energy so far (``partial``); components a meter could not read before
            its window closes are unavailable with that reason.
    """

    attempt: int
    started_at: str
    at: str
    duration_s: float
    cpu_time_s: float | None
    energy: EnergyBlock

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return {
            "attempt": self.attempt,
            "started_at": self.started_at,
            "at": self.at,
            "duration_s": self.duration_s,
            "cpu_time_s": self.cpu_time_s,
            "energy": self.energy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptCheckpoint:
        """Rebuild a checkpoint written by :meth:`to_dict`."""
        energy = EnergyBlock.from_dict(data.get("energy") or {})
        energy.partial = True
        cpu = data.get("cpu_time_s")
        return cls(
            attempt=int(data["attempt"]),
            started_at=str(data["started_at"]),
            at=str(data["at"]),
            duration_s=float(data["duration_s"]),
            cpu_time_s=float(cpu) if cpu is not None else None,
            energy=energy,
        )


def apply_checkpoint(record: RunRecord, checkpoint: AttemptCheckpoint, reason: str) -> None:
    """Make a record whose runner died ``interrupted`` with its last checkpoint's figures.

    Attempts already in ``attempt_log`` (finished before the runner died) are kept; the
    checkpointed attempt is added as ``interrupted`` with ``partial: true``.
    """
    record.status = RunStatus.INTERRUPTED
    record.error = f"{reason}; figures up to the last checkpoint ({checkpoint.at})"
    if any(a.attempt == checkpoint.attempt for a in record.attempt_entries):
        return  # that attempt was recorded whole before the runner died
    record.attempts = checkpoint.attempt
    record.duration_s = checkpoint.duration_s
    record.cpu_time_s = checkpoint.cpu_time_s
    record.energy = checkpoint.energy
    record.ended_at = checkpoint.at
    record.attempt_log.append(
        AttemptEntry(
            attempt=checkpoint.attempt,
            status=RunStatus.INTERRUPTED.value,
            reason=record.error,
            started_at=checkpoint.started_at,
            duration_s=checkpoint.duration_s,
            cpu_time_s=checkpoint.cpu_time_s,
            energy_total_j=checkpoint.energy.total_j,
            energy_method=checkpoint.energy.total_method,
            partial=True,
        ).to_dict()
    )
