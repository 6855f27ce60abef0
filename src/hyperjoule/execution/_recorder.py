"""The coordinator's recorder: the only writer of the database, ``run.json`` and ``summary.csv``.

Executors return :class:`~hyperjoule.execution.AttemptResult` objects; the recorder
turns them into the run's :class:`~hyperjoule.records.RunRecord`: a ``running`` row when
the run starts, the database kept current after every attempt (a crash mid-retry loses
no attempt), and the final record written everywhere before the slot counts as done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hyperjoule.carbon import CarbonEstimate
from hyperjoule.config import CarbonConfig, LoadedStudy, target_fingerprint
from hyperjoule.errors import StorageError
from hyperjoule.execution._result import AttemptResult
from hyperjoule.execution._task import RunTask
from hyperjoule.meters import Baseline
from hyperjoule.provenance import (
    collect_devices,
    collect_host,
    collect_target_version,
    framework_versions,
)
from hyperjoule.records import RunRecord, RunSpec, RunStatus
from hyperjoule.storage import (
    AttemptCheckpoint,
    ResultsStore,
    SummaryCsv,
    session_dir,
    utc_timestamp,
    write_run_json,
)

__all__ = ["Recorder", "carbon_of", "file_interrupted"]

logger = logging.getLogger(__name__)


def carbon_of(record: RunRecord, carbon: CarbonConfig | None) -> CarbonEstimate | None:
    """The record's estimated CO₂e when the study asks for one (``carbon`` in study.yaml)."""
    if carbon is None:
        return None
    reasons = [f"{n}: {c.reason}" for n, c in record.energy.components.items() if c.reason]
    return carbon.estimate(
        record.energy.total_j, record.attempts_energy.total_j, "; ".join(reasons) or None
    )


class Recorder:
    """Writes the records of one session's runs.

    Args:
        loaded: The study (for provenance: files, hash, target definitions).
        store: The open results database.
        results_dir: The results directory.
        session: The session id.
        executor: ``provenance.executor`` defaults (kind) before a result says more.
    """

    def __init__(
        self,
        loaded: LoadedStudy,
        store: ResultsStore,
        results_dir: Path,
        session: str,
        *,
        executor_kind: str = "local",
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.results_dir = results_dir
        self.session = session
        self.executor_kind = executor_kind
        self.system: dict[str, Any] = {}
        self.baseline: Baseline | None = None
        self.rerun_of: dict[str, str] = {}  # slot id -> the record a --rerun replaces
        self._host = collect_host()
        self._frameworks = framework_versions()
        self._devices: dict[tuple[int, ...] | None, dict[str, Any]] = {}
        self._code_versions: dict[str, dict[str, Any]] = {}
        self.summary = SummaryCsv(session_dir(results_dir, loaded.name, session) / "summary.csv")

    def _devices_of(self, gpus: tuple[int, ...] | None) -> dict[str, Any]:
        if gpus not in self._devices:
            self._devices[gpus] = collect_devices(
                gpu_indices=list(gpus) if gpus is not None else None
            )
        return self._devices[gpus]

    def _code_version(self, target_name: str) -> dict[str, Any]:
        if target_name not in self._code_versions:
            workdir = self.loaded.targets[target_name].workdir
            self._code_versions[target_name] = collect_target_version(workdir)
        return self._code_versions[target_name]

    def start(self, spec: RunSpec, task: RunTask) -> RunRecord:
        """Insert the ``running`` record of the run whose first task is ``task``."""
        target = self.loaded.targets[spec.target]
        Path(task.run_dir).mkdir(parents=True, exist_ok=True)
        record = RunRecord(
            run_id=task.run_id,
            study=spec.study,
            session=self.session,
            slot_id=spec.slot_id,
            target=spec.target,
            model=spec.model,
            mode=spec.mode,
            hyperparameters=dict(spec.hyperparameters),
            mutated=list(spec.mutated),
            dedup_key=spec.dedup_key,
            status=RunStatus.RUNNING,
            metric_goals={n: m.goal for n, m in target.metrics.items() if m.goal is not None},
            started_at=utc_timestamp(),
            command=list(task.argv),
            run_dir=task.run_dir,
            rerun_of=self.rerun_of.get(spec.slot_id),
            search=dict(spec.search) if spec.search is not None else None,
            provenance={
                "host": self._host,
                "devices": self._devices_of(spec.gpus),
                "frameworks": self._frameworks,
                "baseline": self.baseline.to_dict() if self.baseline is not None else None,
                "cooldown_before": None,
                "target_code": self._code_version(spec.target),
                "target_fingerprint": target_fingerprint(target).to_dict(),
                "cwd": task.cwd,
                "env": dict(target.env),
                "study_file": str(self.loaded.path),
                "targets_file": str(self.loaded.targets_path),
                "study_config_hash": self.loaded.config_hash,
                "meters": [],
                "system": self.system,
                "executor": {"kind": self.executor_kind},
            },
        )
        self.store.insert_run(record)
        return record

    def attempt(self, record: RunRecord, task: RunTask, result: AttemptResult) -> None:
        """Fold one attempt's result into the record and keep the database current."""
        record.attempts = result.attempt
        record.status = result.status
        record.error = result.reason
        record.exit_code = result.exit_code
        record.duration_s = result.duration_s
        record.cpu_time_s = result.cpu_time_s
        record.metrics = dict(result.metrics)
        record.energy = result.energy
        record.power = result.power
        record.command = list(task.argv)
        record.background = result.background.to_dict() if result.background else None
        record.attempt_log.append(result.log_entry().to_dict())
        record.escaped_processes += [
            {**escaped, "attempt": result.attempt} for escaped in result.escaped_processes
        ]
        if result.intermediate is not None:
            record.search = {**(record.search or {}), "intermediate": result.intermediate}
        provenance = record.provenance
        if result.gpu_power_limit is not None:
            provenance["gpu_power_limit"] = result.gpu_power_limit
        if result.meters:
            provenance["meters"] = list(result.meters)
        if result.attempt == 1:
            provenance["cooldown_before"] = result.cooldown_before
        if result.executor is not None:
            provenance["executor"] = result.executor.to_dict()
            gpus = result.executor.gpu_ids
            if gpus is not None and task.gpus is None:
                # The executor chose the GPUs: describe those, not the inherited ones.
                provenance["devices"] = self._devices_of(gpus)
        self.store.update_run(record)

    def retrying(self, record: RunRecord) -> None:
        """Store the run as ``running`` again while its next attempt runs.

        The attempt just folded in set the outcome it ended with (``failed``...); left
        so, the next attempt's checkpoints would not be stored and a runner killed during
        it would leave a ``failed`` slot that resume never runs, its energy lost.
        """
        record.status = RunStatus.RUNNING
        self.store.update_run(record)

    def checkpoint(self, run_id: str, checkpoint: AttemptCheckpoint) -> None:
        """Store a running attempt's accounting so far (failures are logged, not raised)."""
        try:
            self.store.checkpoint_run(run_id, checkpoint)
        except StorageError as e:
            logger.warning("run %s: checkpoint not stored: %s", run_id, e)

    def finish(self, record: RunRecord) -> None:
        """Write the final record to the database, ``run.json`` and ``summary.csv``.

        Each is tried even when another failed (a full disk may still take a database
        page but not a CSV line); then the first failure stops the study.

        Raises:
            StorageError: A write failed.
        """
        record.ended_at = utc_timestamp()
        record.carbon = carbon_of(record, self.loaded.study.carbon)
        directory = Path(record.run_dir or ".")
        failures: list[str] = []
        steps = (
            ("database", lambda: self.store.update_run(record)),
            ("run.json", lambda: write_run_json(directory, record)),
            ("summary.csv", lambda: self.summary.append(record)),
        )
        for what, step in steps:
            try:
                step()
            except (StorageError, OSError) as e:
                logger.error("run %s: cannot write %s: %s", record.run_id, what, e)
                failures.append(f"{what} ({e})")
        if failures:
            raise StorageError(
                f"{self.results_dir}: recording run {record.run_id} failed: "
                + "; ".join(failures)
                + "; the study stopped; free space or fix permissions, then run it again"
            )


def file_interrupted(
    loaded: LoadedStudy, store: ResultsStore, results_dir: Path, records: list[RunRecord]
) -> None:
    """Give runs a killed runner left behind their ``run.json`` and ``summary.csv`` row.

    ``records`` are the runs :meth:`ResultsStore.mark_stale_running` just turned
    ``interrupted`` (with their last checkpoint's figures): the killed runner never wrote
    their files, so the run directory and the session's summary would miss runs whose
    energy was spent. A failure here is logged: the database already holds the record.
    """
    for record in records:
        record.carbon = carbon_of(record, loaded.study.carbon)
        summary = SummaryCsv(session_dir(results_dir, loaded.name, record.session) / "summary.csv")
        steps: list[tuple[str, Callable[[], object]]] = [
            ("summary.csv", partial(summary.append, record))
        ]
        if record.carbon is not None:
            steps.insert(0, ("database", partial(store.update_run, record)))
        if record.run_dir and Path(record.run_dir).is_dir():
            steps.append(("run.json", partial(write_run_json, Path(record.run_dir), record)))
        for what, step in steps:
            try:
                step()
            except (StorageError, OSError) as e:
                logger.warning("run %s: cannot write %s: %s", record.run_id, what, e)
