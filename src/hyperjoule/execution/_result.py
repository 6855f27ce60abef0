"""What one attempt produced: a typed :class:`AttemptResult`, returned by every executor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hyperjoule.records import AttemptEntry, EnergyBlock, PowerBlock, RunStatus

__all__ = ["AttemptResult", "BackgroundReport", "ExecutorInfo"]


@dataclass(frozen=True)
class ExecutorInfo:
    """Where an attempt ran (``provenance.executor`` of the record).

    Attributes:
        kind: Executor kind (``local``, ``ray``).
        node_id: Identity of the node within the executor (host name for ``local``).
        host: Host name of the node.
        gpu_ids: GPU indices (NVML numbering on that node) the attempt was given.
        files_on_node: Files of the run directory too large to bring back: relative
            path to their absolute path on that node (remote executors only).
    """

    kind: str
    node_id: str
    host: str
    gpu_ids: tuple[int, ...] | None = None
    files_on_node: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``files_on_node`` only when some stayed behind)."""
        data = dataclasses.asdict(self)
        data["gpu_ids"] = list(self.gpu_ids) if self.gpu_ids is not None else None
        if not self.files_on_node:
            data.pop("files_on_node")
        return data


@dataclass
class BackgroundReport:
    """The ``background`` block of a parallel run: identity, runs, load and verdict.

    Attributes:
        effective: Whether every background loaded the machine during the foreground.
        reasons: Why it was not effective (empty when effective).
        notes: Facts worth knowing that do not change the verdict (short jobs that were
            restarted but kept the load above the threshold).
        details: The rest of the block as stored in ``run.json`` (target, model,
            hyperparameters, runs, load, warm-up, jobs, ``energy`` estimate when the
            foreground's CPU figure is a per-process estimate).
    """

    effective: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record's ``background`` block."""
        return {
            **self.details,
            "effective": self.effective,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackgroundReport:
        """Rebuild a block written by :meth:`to_dict`."""
        rest = {k: v for k, v in data.items() if k not in ("effective", "reasons", "notes")}
        return cls(
            effective=bool(data.get("effective")),
            reasons=list(data.get("reasons") or []),
            notes=list(data.get("notes") or []),
            details=rest,
        )


@dataclass
class AttemptResult:
    """Everything one attempt produced; the recorder turns it into the run record.

    Executors return it through their futures; it is picklable. Paths in it are
    relative to the attempt's run directory, so a remote executor can copy the files
    and the result stays true.

    Attributes:
        run_id: The task's run id.
        attempt: The task's attempt number.
        status: Outcome class of the attempt.
        reason: Why it did not succeed (None when it did).
        exit_code: Exit status; a negative number is the signal that ended it.
        signal: Signal number that ended the process, or None.
        duration_s: Wall time of the training process, in seconds.
        cpu_time_s: CPU time of its process tree, in seconds (None: not measured).
        max_rss_bytes: Peak resident set size, in bytes (None: not measured).
        started_at: UTC timestamp when the process started.
        ended_at: UTC timestamp when it ended.
        metrics: Metric name to value.
        metrics_sources: Metric name to where it was read (``file``/``structured``/``regex``).
        metrics_problems: Things that looked like metrics but could not be used.
        energy: Energy of the attempt, one component per device kind.
        power: GPU power/temperature/utilisation summary.
        meters: Names of the meters that measured the attempt.
        background: The background block (parallel mode), else None.
        log: The attempt's log file, relative to the run directory.
        files: Every file the attempt wrote, relative to the run directory (what a remote
            executor must bring back).
        executor: Where the attempt ran.
        escaped_processes: Processes of the attempt that outlived its process (daemons
            that left its session) and were killed: pid, name, found_by, CPU time.
        leftover_cpu_time_s: CPU time of those processes, in seconds (in ``cpu_time_s``).
        escape_watch: How left-behind processes were looked for.
        gpu_power_limit: The ``gpu_power_limit_w`` the executor set on the attempt's
            GPUs (``limit_w``, ``applied``, ``gpus``), or None.
        cooldown_before: The pause the executor made on the attempt's devices before it
            started (``kind``, ``waited_s``, ...), or None.
        intermediate: Search runs: the intermediate metrics points read while it ran
            (``[{"epoch": 1, "val_accuracy": 0.8}, ...]``); None for other runs.
    """

    run_id: str
    attempt: int
    status: RunStatus
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration_s: float = 0.0
    cpu_time_s: float | None = None
    max_rss_bytes: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_sources: dict[str, str] = field(default_factory=dict)
    metrics_problems: list[str] = field(default_factory=list)
    energy: EnergyBlock = field(default_factory=EnergyBlock)
    power: PowerBlock = field(default_factory=PowerBlock)
    meters: list[str] = field(default_factory=list)
    background: BackgroundReport | None = None
    log: str = ""
    files: list[str] = field(default_factory=list)
    executor: ExecutorInfo | None = None
    cooldown_before: dict[str, Any] | None = None
    escaped_processes: list[dict[str, Any]] = field(default_factory=list)
    leftover_cpu_time_s: float = 0.0
    escape_watch: str = ""
    gpu_power_limit: dict[str, Any] | None = None
    intermediate: list[dict[str, float]] | None = None

    def log_entry(self) -> AttemptEntry:
        """This attempt's entry in the record's ``attempt_log``."""
        details: dict[str, Any] = {
            "metrics_sources": dict(self.metrics_sources),
            "metrics_problems": list(self.metrics_problems),
            "energy_files": sorted(f for f in self.files if f.startswith("energy/")),
            "background_effective": (
                self.background.effective if self.background is not None else None
            ),
            "executor": self.executor.to_dict() if self.executor is not None else None,
            "escaped_processes": list(self.escaped_processes),
            "leftover_cpu_time_s": self.leftover_cpu_time_s,
            "escape_watch": self.escape_watch,
        }
        return AttemptEntry(
            attempt=self.attempt,
            status=self.status.value,
            reason=self.reason,
            exit_code=self.exit_code if self.signal is None else None,
            signal=self.signal,
            started_at=self.started_at,
            duration_s=self.duration_s,
            cpu_time_s=self.cpu_time_s,
            max_rss_bytes=self.max_rss_bytes,
            energy_total_j=self.energy.total_j,
            energy_method=self.energy.total_method,
            log=self.log or None,
            details=details,
        )

    @classmethod
    def interrupted(cls, run_id: str, attempt: int, reason: str) -> AttemptResult:
        """The result of an attempt stopped before its process started."""
        return cls(
            run_id=run_id,
            attempt=attempt,
            status=RunStatus.INTERRUPTED,
            reason=reason,
            energy=EnergyBlock(),
            power=PowerBlock(reason="the attempt did not start"),
        )
