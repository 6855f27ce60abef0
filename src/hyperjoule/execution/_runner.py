"""Running a study: every planned run launched, measured, classified, retried, recorded.

One run, step by step: a ``running`` record goes into the database, then for each attempt
the meters open a window, the training process runs (own process group, output streamed
to ``attempt-N.log``), the window closes, metrics are extracted and the outcome is
classified; failed attempts are retried up to ``max_retries``. The final record is
written to the database, ``run.json`` and ``summary.csv`` before the next run starts.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from hyperjoule.config import (
    LoadedStudy,
    ParallelExperiment,
    Target,
    format_value,
    resolve_command,
)
from hyperjoule.errors import PreflightError, StorageError
from hyperjoule.execution._guards import Heartbeat, check_results_dir, refuse_live_sessions
from hyperjoule.execution._metering import MeterPool, run_environ
from hyperjoule.execution._outcome import classify_outcome
from hyperjoule.execution._plan_state import PlanState, load_plan_state
from hyperjoule.execution._process import run_process
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.execution._system import CPU_SYSFS_ROOT, SystemKnobs
from hyperjoule.meters import Meter, RunUsage, merge_readings
from hyperjoule.metrics import MetricPattern, extract_metrics
from hyperjoule.provenance import collect_host, collect_target_version
from hyperjoule.records import RunRecord, RunSpec, RunStatus
from hyperjoule.storage import (
    DB_FILENAME,
    ResultsStore,
    StudyLock,
    SummaryCsv,
    new_run_id,
    run_dir,
    session_dir,
    write_run_json,
)

__all__ = ["RunObserver", "StudyResult", "build_argv", "check_assets", "run_study"]

logger = logging.getLogger(__name__)

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


class RunObserver(Protocol):
    """Receives progress events (the CLI draws its progress bar from them)."""

    def study_started(self, study: str, session: str, plan: PlanState) -> None:
        """Called once before the first run."""

    def run_started(self, index: int, total: int, spec: RunSpec, run_id: str) -> None:
        """Called when a run (its first attempt) starts; ``index`` counts from 1."""

    def run_finished(self, index: int, total: int, record: RunRecord) -> None:
        """Called when a run is recorded."""


@dataclass
class StudyResult:
    """What a call of :func:`run_study` did."""

    study: str
    session: str
    planned: int
    already_done: int
    records: list[RunRecord] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[RunRecord]:
        """Records of this session that did not succeed (interrupted ones excluded)."""
        return [
            r for r in self.records if r.status not in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED)
        ]


def check_assets(loaded: LoadedStudy) -> None:
    """Refuse a study whose targets' declared assets are missing.

    Raises:
        PreflightError: Lists every missing asset with its target.
    """
    used = _used_targets(loaded)
    missing = [
        f"{name}: {asset}"
        for name in used
        for asset in loaded.targets[name].assets
        if not (loaded.targets[name].workdir / Path(asset).expanduser()).exists()
    ]
    if missing:
        raise PreflightError(
            f"{loaded.targets_path}: declared assets are missing (needed offline): "
            + "; ".join(missing)
            + "; put them in place or remove them from 'assets'"
        )


def _used_targets(loaded: LoadedStudy) -> list[str]:
    names: list[str] = []
    for exp in loaded.study.experiments:
        if isinstance(exp, ParallelExperiment):
            used = [exp.foreground.target, *(b.target for b in exp.backgrounds)]
        else:
            used = [exp.target]
        for name in used:
            if name not in names:
                names.append(name)
    return names


def build_argv(
    target: Target, spec_model: str | None, hyperparameters: dict[str, Any]
) -> list[str]:
    """Return the full argv of a run: command, fixed args, model flag, every hyperparameter.

    Every declared hyperparameter is passed explicitly, so a record never depends on a
    script's hidden defaults.
    """
    argv = resolve_command(target) + list(target.args)
    if spec_model is not None and target.model_flag:
        argv += [target.model_flag, spec_model]
    for name, hp in target.hyperparameters.items():
        argv += [hp.flag, format_value(hyperparameters[name])]
    return argv


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@contextmanager
def _sigint_sets(event: threading.Event) -> Iterator[None]:
    """While active, Ctrl-C (SIGINT) and SIGTERM set ``event`` instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        logger.warning("signal %d received: stopping after recording the current run", signum)
        event.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_study(
    loaded: LoadedStudy,
    results_dir: Path,
    *,
    observer: RunObserver | None = None,
    stop_event: threading.Event | None = None,
    meters: Sequence[Meter] | None = None,
    cpu_sysfs_root: Path = CPU_SYSFS_ROOT,
) -> StudyResult:
    """Run (or resume) a study and record every run.

    Args:
        loaded: The validated study (see :func:`hyperjoule.config.load_study`).
        results_dir: Where the database and run directories live.
        observer: Receives progress events.
        stop_event: Set it to stop after the current run is recorded as interrupted.
            Ctrl-C sets it when this runs in the main thread.
        meters: Meters to use; by default those :func:`hyperjoule.meters.create_meters`
            finds on this machine.
        cpu_sysfs_root: Where CPU governors live (tests point it at a fake sysfs tree).

    Raises:
        PreflightError: Declared assets are missing (nothing is written).
        StorageError: The results directory cannot be used.
    """
    check_assets(loaded)
    check_results_dir(results_dir)
    planned = _check_plan(loaded, results_dir)
    pool = MeterPool(fixed=meters)
    try:
        pool.preflight(
            planned.todo,
            loaded.targets,
            allow_estimates=loaded.study.allow_estimates,
            study_path=loaded.path,
        )
    except BaseException:
        pool.close()
        raise
    knobs = SystemKnobs(loaded.study.system, cpu_sysfs_root)
    knobs.check()
    stop = stop_event or threading.Event()
    with contextlib.ExitStack() as resources:
        # Released in reverse: meters, database, knobs restored, lock dropped last.
        resources.enter_context(StudyLock(results_dir, loaded.name))
        resources.enter_context(knobs)
        store = resources.enter_context(ResultsStore(results_dir))
        resources.callback(pool.close)
        refuse_live_sessions(store, loaded.name)
        stale = store.mark_stale_running(loaded.name)
        if stale:
            logger.warning("%d run(s) left running by an earlier session marked interrupted", stale)
        state = load_plan_state(loaded, store, save=True)
        session = store.begin_session(loaded.name, config=loaded.to_config_dict())
        result = StudyResult(loaded.name, session, len(state.specs), len(state.done))
        if observer is not None:
            observer.study_started(loaded.name, session, state)
        status = "completed"
        try:
            with _sigint_sets(stop), Heartbeat(results_dir, session), GroupReaper() as reaper:
                context = _SessionContext(loaded, store, results_dir, session, pool, reaper)
                context.system = knobs.provenance()
                _run_todo(context, state, stop, observer, result)
            if stop.is_set():
                status = "interrupted"
                result.interrupted = True
        except BaseException:
            status = "failed"
            raise
        finally:
            try:
                store.end_session(session, status)
            except StorageError as e:  # e.g. the disk filled up: keep the first error
                logger.error("could not record the end of session %s: %s", session, e)
        return result


def _run_todo(
    context: _SessionContext,
    state: PlanState,
    stop: threading.Event,
    observer: RunObserver | None,
    result: StudyResult,
) -> None:
    """Run the unfinished runs in plan order, with cooldowns, until done or stopped."""
    for index, spec in enumerate(state.todo, start=1):
        if stop.is_set():
            return
        result.records.append(context.execute(spec, index, len(state.todo), stop, observer))
        if stop.is_set():
            return
        if spec.cooldown_s > 0 and index < len(state.todo):
            stop.wait(spec.cooldown_s)


def _check_plan(loaded: LoadedStudy, results_dir: Path) -> PlanState:
    """Plan without writing, so an impossible study is refused before anything exists."""
    if not (results_dir / DB_FILENAME).exists():
        return load_plan_state(loaded, None, save=False)
    with ResultsStore(results_dir, create=False) as store:
        return load_plan_state(loaded, store, save=False)


class _SessionContext:
    """Per-session facts shared by the runs of one ``run_study`` call."""

    def __init__(
        self,
        loaded: LoadedStudy,
        store: ResultsStore,
        results_dir: Path,
        session: str,
        meters: MeterPool,
        reaper: GroupReaper,
    ) -> None:
        self.reaper = reaper
        self.system: dict[str, Any] = {}
        self.loaded = loaded
        self.store = store
        self.results_dir = results_dir
        self.session = session
        self.meters = meters
        self.host = collect_host()
        self.code_versions: dict[str, dict[str, Any]] = {}
        self.summary = SummaryCsv(session_dir(results_dir, loaded.name, session) / "summary.csv")

    def _code_version(self, target_name: str) -> dict[str, Any]:
        if target_name not in self.code_versions:
            workdir = self.loaded.targets[target_name].workdir
            self.code_versions[target_name] = collect_target_version(workdir)
        return self.code_versions[target_name]

    def execute(
        self,
        spec: RunSpec,
        index: int,
        total: int,
        stop: threading.Event,
        observer: RunObserver | None,
    ) -> RunRecord:
        """Run one planned run with its retries and record it."""
        target = self.loaded.targets[spec.target]
        run_id = new_run_id()
        directory = run_dir(self.results_dir, spec.study, self.session, run_id)
        directory.mkdir(parents=True, exist_ok=True)
        argv = build_argv(target, spec.model, spec.hyperparameters)
        record = RunRecord(
            run_id=run_id,
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
            started_at=_now(),
            command=argv,
            run_dir=str(directory),
            provenance={
                "host": self.host,
                "target_code": self._code_version(spec.target),
                "cwd": str(target.workdir),
                "env": dict(target.env),
                "study_file": str(self.loaded.path),
                "targets_file": str(self.loaded.targets_path),
                "study_config_hash": self.loaded.config_hash,
                "meters": [m.name for m in self.meters.for_run(spec, run_environ(spec, target))],
                "system": self.system,
            },
        )
        self.store.insert_run(record)
        if observer is not None:
            observer.run_started(index, total, spec, run_id)
        for attempt in range(1, spec.max_retries + 2):
            self._attempt(record, spec, target, attempt, directory, stop)
            if record.status in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED):
                break
            if attempt <= spec.max_retries:
                logger.info("run %s attempt %d: %s; retrying", run_id, attempt, record.status.value)
        record.ended_at = _now()
        self._record(record, directory)
        if observer is not None:
            observer.run_finished(index, total, record)
        return record

    def _record(self, record: RunRecord, directory: Path) -> None:
        """Write the final record to the database, ``run.json`` and ``summary.csv``.

        Each is tried even when another failed (a full disk may still take a database
        page but not a CSV line); then the first failure stops the study.
        """
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

    def _attempt(
        self,
        record: RunRecord,
        spec: RunSpec,
        target: Target,
        attempt: int,
        directory: Path,
        stop: threading.Event,
    ) -> None:
        log_path = directory / f"attempt-{attempt}.log"
        metrics_file = directory / "metrics.json"
        metrics_file.unlink(missing_ok=True)  # a retry must not read the last attempt's file
        env = run_environ(spec, target)
        meters = self.meters.for_run(spec, env)
        if target.offline:
            env.update(OFFLINE_ENV)
        env.update(
            HYPERJOULE_RUN_DIR=str(directory),
            HYPERJOULE_METRICS_FILE=str(metrics_file),
            HYPERJOULE_RUN_ID=record.run_id,
            HYPERJOULE_ATTEMPT=str(attempt),
        )
        for meter in meters:
            meter.start(directory)
        result = run_process(
            record.command,
            cwd=target.workdir,
            env=env,
            log_path=log_path,
            timeout_s=target.timeout_s,
            stop_event=stop,
            on_start=self.reaper.track,
        )
        self.reaper.untrack(result.pid)
        usage = RunUsage(duration_s=result.duration_s, cpu_time_s=result.cpu_time_s)
        readings = [meter.stop(usage) for meter in meters]
        energy, power = merge_readings(readings)
        patterns = {
            name: MetricPattern(regex=m.regex, match=m.match) for name, m in target.metrics.items()
        }
        extracted = extract_metrics(log_path, patterns=patterns, metrics_file=metrics_file)
        status, reason = classify_outcome(
            result,
            metrics_found=extracted.values.keys(),
            required_metrics=target.required_metrics,
            log_path=log_path,
        )
        record.attempts = attempt
        record.status = status
        record.error = reason
        record.exit_code = result.exit_code if result.signal is None else -result.signal
        record.duration_s = result.duration_s
        record.cpu_time_s = result.cpu_time_s
        record.metrics = dict(extracted.values)
        record.energy = energy
        record.power = power
        record.attempt_log.append(
            {
                "attempt": attempt,
                "status": status.value,
                "reason": reason,
                "exit_code": result.exit_code,
                "signal": result.signal,
                "duration_s": result.duration_s,
                "cpu_time_s": result.cpu_time_s,
                "max_rss_bytes": result.max_rss_bytes,
                "energy_total_j": energy.total_j,
                "energy_method": energy.total_method,
                "metrics_sources": dict(extracted.sources),
                "metrics_problems": list(extracted.problems),
                "energy_files": sorted({f for r in readings for f in r.files}),
                "log": log_path.name,
            }
        )
        # Keep the database current between attempts: a crash mid-retry loses no attempt.
        self.store.update_run(record)
