"""One run of a study, attempt by attempt: environment, meters, process, outcome, record.

For each attempt the meters open a window, the training process runs (own process group,
output streamed to ``attempt-N.log``), the window closes, metrics are extracted and the
outcome classified. Parallel runs start their supervised background first and stop it
within a second of the foreground's end. The final record goes to the database,
``run.json`` and ``summary.csv`` before the next run starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from hyperjoule.carbon import CarbonEstimate
from hyperjoule.config import (
    CarbonConfig,
    LoadedStudy,
    Target,
    format_value,
    placeholder_values,
    resolve_command,
    resolve_env,
    target_fingerprint,
)
from hyperjoule.errors import StorageError
from hyperjoule.execution._background import BackgroundJob, BackgroundSet
from hyperjoule.execution._checkpoint import CHECKPOINT_PERIOD_S, AttemptCheckpointer
from hyperjoule.execution._intermediate import IntermediateWatch
from hyperjoule.execution._metering import MeterPool, run_environ
from hyperjoule.execution._outcome import classify_outcome
from hyperjoule.execution._plan_state import PlanState
from hyperjoule.execution._power import GpuPowerLimits
from hyperjoule.execution._process import run_process
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.meters import (
    Baseline,
    RunUsage,
    gpu_temperature_reader,
    merge_readings,
    net_energy_with_reason,
    readings_so_far,
)
from hyperjoule.metrics import MetricPattern, extract_metrics
from hyperjoule.provenance import (
    collect_devices,
    collect_host,
    collect_target_version,
    framework_versions,
)
from hyperjoule.records import BackgroundPolicy, EnergyBlock, RunRecord, RunSpec, RunStatus
from hyperjoule.storage import (
    ResultsStore,
    SummaryCsv,
    new_run_id,
    path_component,
    run_dir,
    session_dir,
    utc_timestamp,
    write_run_json,
)

__all__ = ["PointCallback", "RunObserver", "SessionContext", "build_argv"]

PointCallback = Callable[[dict[str, float]], bool]
"""Receives each intermediate point of a search run; True stops (prunes) the run."""

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Receives progress events (the CLI draws its progress bar from them)."""

    def study_started(self, study: str, session: str, plan: PlanState) -> None:
        """Called once before the first run."""

    def run_started(self, index: int, total: int, spec: RunSpec, run_id: str) -> None:
        """Called when a run (its first attempt) starts; ``index`` counts from 1."""

    def run_finished(self, index: int, total: int, record: RunRecord) -> None:
        """Called when a run is recorded."""


def build_argv(
    target: Target,
    spec_model: str | None,
    hyperparameters: dict[str, Any],
    values: dict[str, str] | None = None,
) -> list[str]:
    """Return the full argv of a run: command, fixed args, model flag, every hyperparameter.

    Every declared hyperparameter is passed explicitly, so a record never depends on a
    script's hidden defaults. ``values`` are the placeholder values of this launch
    (see :func:`hyperjoule.config.placeholder_values`).
    """
    argv = resolve_command(target, values)
    if spec_model is not None and target.model_flag:
        argv += [target.model_flag, spec_model]
    for name, hp in target.hyperparameters.items():
        if hp.flag is not None:  # system knobs (no flag) are applied by hyperjoule itself
            argv += [hp.flag, format_value(hyperparameters[name])]
    return argv


def carbon_of(record: RunRecord, carbon: CarbonConfig | None) -> CarbonEstimate | None:
    """The record's estimated CO₂e when the study asks for one (``carbon`` in study.yaml)."""
    if carbon is None:
        return None
    reasons = [f"{n}: {c.reason}" for n, c in record.energy.components.items() if c.reason]
    return carbon.estimate(
        record.energy.total_j, record.attempts_energy.total_j, "; ".join(reasons) or None
    )


class SessionContext:
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
        self.power_limits: GpuPowerLimits | None = None
        self.loaded = loaded
        self.store = store
        self.results_dir = results_dir
        self.session = session
        self.meters = meters
        self.host = collect_host()
        self.frameworks = framework_versions()
        self.devices: dict[tuple[int, ...] | None, dict[str, Any]] = {}
        self.code_versions: dict[str, dict[str, Any]] = {}
        self.rerun_of: dict[str, str] = {}  # slot id -> the record a --rerun replaces
        self.baseline: Baseline | None = None
        self.cooldown_before: dict[str, Any] | None = None
        self.summary = SummaryCsv(session_dir(results_dir, loaded.name, session) / "summary.csv")

    def _devices(self, spec: RunSpec) -> dict[str, Any]:
        if spec.gpus not in self.devices:
            self.devices[spec.gpus] = collect_devices(
                gpu_indices=list(spec.gpus) if spec.gpus is not None else None
            )
        return self.devices[spec.gpus]

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
        on_point: PointCallback | None = None,
    ) -> RunRecord:
        """Run one planned run with its retries and record it.

        ``on_point`` (search runs) receives each intermediate metrics point as the run
        prints it; when it returns True the run is stopped and recorded ``pruned``.
        """
        target = self.loaded.targets[spec.target]
        run_id = new_run_id()
        directory = run_dir(self.results_dir, spec.study, self.session, run_id)
        directory.mkdir(parents=True, exist_ok=True)
        argv = build_argv(
            target, spec.model, spec.hyperparameters, _launch_values(target, directory, run_id, 1)
        )
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
            metric_goals={n: m.goal for n, m in target.metrics.items() if m.goal is not None},
            started_at=utc_timestamp(),
            command=argv,
            run_dir=str(directory),
            rerun_of=self.rerun_of.get(spec.slot_id),
            search=dict(spec.search) if spec.search is not None else None,
            provenance={
                "host": self.host,
                "devices": self._devices(spec),
                "frameworks": self.frameworks,
                "baseline": self.baseline.to_dict() if self.baseline is not None else None,
                "cooldown_before": self.cooldown_before,
                "target_code": self._code_version(spec.target),
                "target_fingerprint": target_fingerprint(target).to_dict(),
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
            self._attempt(record, spec, target, attempt, directory, stop, on_point)
            if record.status in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED, RunStatus.PRUNED):
                break
            if record.status.value not in spec.retry_on:
                if attempt <= spec.max_retries:
                    logger.info(
                        "run %s: %s is not retried (retry_on: %s)",
                        run_id,
                        record.status.value,
                        ", ".join(spec.retry_on) or "nothing",
                    )
                break
            if attempt <= spec.max_retries:
                logger.info("run %s attempt %d: %s; retrying", run_id, attempt, record.status.value)
        record.ended_at = utc_timestamp()
        record.carbon = carbon_of(record, self.loaded.study.carbon)
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
        on_point: PointCallback | None = None,
    ) -> None:
        log_path = directory / f"attempt-{attempt}.log"
        watch = _intermediate_watch(spec, log_path, on_point)
        metrics_file = directory / "metrics.json"
        metrics_file.unlink(missing_ok=True)  # a retry must not read the last attempt's file
        env = run_environ(spec, target)
        meters = self.meters.for_run(spec, env)
        values = _launch_values(target, directory, record.run_id, attempt)
        record.command = build_argv(target, spec.model, spec.hyperparameters, values)
        env.update(resolve_env(target, values))
        env.update(
            HYPERJOULE_RUN_DIR=str(directory),
            HYPERJOULE_METRICS_FILE=str(metrics_file),
            HYPERJOULE_RUN_ID=record.run_id,
            HYPERJOULE_ATTEMPT=str(attempt),
        )
        with (
            self._power_limit(record, spec, env),
            self._background(
                spec, directory / "background" / f"attempt-{attempt}", stop, record.run_id, attempt
            ) as bg,
        ):
            if bg is not None:
                bg.wait_until_loaded(stop)
            for meter in meters:
                meter.start(directory)
            window_start = time.monotonic()
            result = run_process(
                record.command,
                cwd=target.workdir,
                env=env,
                log_path=log_path,
                timeout_s=target.timeout_s,
                stop_event=stop,
                on_start=self.reaper.track,
                should_stop=watch.should_stop if watch is not None else None,
                on_progress=AttemptCheckpointer(
                    attempt,
                    lambda usage: readings_so_far(meters, usage),
                    lambda checkpoint: self.store.checkpoint_run(record.run_id, checkpoint),
                ),
                progress_every_s=CHECKPOINT_PERIOD_S,
            )
            window = (window_start, time.monotonic())
            self.reaper.untrack(result.pid)
            usage = RunUsage(duration_s=result.duration_s, cpu_time_s=result.cpu_time_s)
            readings = [meter.stop(usage) for meter in meters]
        energy, power = merge_readings(readings)
        if self.baseline is not None:
            for name, component in energy.components.items():
                component.idle_power_w = self.baseline.power_w.get(name)
                component.net_energy_j, component.net_reason = net_energy_with_reason(
                    component, result.duration_s, self.baseline, name=name
                )
        patterns = {
            name: MetricPattern(regex=m.regex, match=m.match)
            for name, m in target.metrics.items()
            if m.regex is not None
        }
        extracted = extract_metrics(log_path, patterns=patterns, metrics_file=metrics_file)
        status, reason = classify_outcome(
            result,
            metrics_found=extracted.values.keys(),
            required_metrics=target.required_metrics,
            log_path=log_path,
            timeout_s=target.timeout_s,
        )
        if bg is not None:
            record.background = bg.record(window)
            _mark_combined(energy)
            if (
                status is RunStatus.SUCCEEDED
                and spec.background_policy is not None
                and spec.background_policy.require_effective_background
                and not record.background["effective"]
            ):
                status = RunStatus.FAILED
                reason = "background not effective: " + "; ".join(record.background["reasons"])
        if watch is not None:
            watch.read_new()  # the lines printed after the last poll
            record.search = {**(spec.search or {}), "intermediate": watch.points}
        record.attempts = attempt
        record.status = status
        record.error = reason
        record.exit_code = result.exit_code if result.signal is None else -result.signal
        record.duration_s = result.duration_s
        record.cpu_time_s = result.cpu_time_s
        record.metrics = dict(extracted.values)
        record.escaped_processes += [{**e.to_dict(), "attempt": attempt} for e in result.escaped]
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
                "escaped_processes": [e.to_dict() for e in result.escaped],
                "leftover_cpu_time_s": result.leftover_cpu_time_s,
                "escape_watch": result.escape_watch,
                "background_effective": (
                    record.background["effective"] if bg is not None and record.background else None
                ),
            }
        )
        # Keep the database current between attempts: a crash mid-retry loses no attempt.
        self.store.update_run(record)

    @contextmanager
    def _power_limit(self, record: RunRecord, spec: RunSpec, env: dict[str, str]) -> Iterator[None]:
        """The run's ``gpu_power_limit_w`` in force for the attempt, then restored."""
        if self.power_limits is None:
            yield
            return
        try:
            applied = self.power_limits.apply(spec, env)
            if applied is not None:
                record.provenance["gpu_power_limit"] = applied
            yield
        finally:
            self.power_limits.restore()

    @contextmanager
    def _background(
        self, spec: RunSpec, directory: Path, stop: threading.Event, run_id: str, attempt: int
    ) -> Iterator[BackgroundSet | None]:
        """Start a parallel run's backgrounds; stop them however the block ends."""
        if spec.mode != "parallel" or not spec.background:
            yield None
            return
        policy = spec.background_policy or BackgroundPolicy()
        jobs = []
        for n, bg in enumerate(spec.background, start=1):
            bg_target = self.loaded.targets[bg.target]
            # Confined to the run directory even if a name slipped past the config checks.
            bg_dir = directory / path_component("background target", f"{n}-{bg.target}")
            env = run_environ(spec, bg_target)  # the same GPUs as the foreground
            values = _launch_values(bg_target, bg_dir, run_id, attempt)
            env.update(resolve_env(bg_target, values))
            # A script that always writes its metrics file must not crash as a background.
            env.update(
                HYPERJOULE_RUN_DIR=values["run_dir"],
                HYPERJOULE_METRICS_FILE=str(Path(values["run_dir"]) / "metrics.json"),
                HYPERJOULE_RUN_ID=run_id,
                HYPERJOULE_ATTEMPT=str(attempt),
                HYPERJOULE_BACKGROUND="1",
            )
            jobs.append(
                BackgroundJob(
                    spec=bg,
                    argv=build_argv(bg_target, bg.model, bg.hyperparameters, values),
                    cwd=bg_target.workdir,
                    env=env,
                    directory=bg_dir,
                    policy=policy,
                    reaper=self.reaper,
                    timeout_s=bg_target.timeout_s,
                )
            )
        # GPU utilisation of the shared GPUs says whether a GPU background loads them.
        gpu_reader = gpu_temperature_reader(
            gpu_indices=list(spec.gpus) if spec.gpus is not None else None,
            environ=run_environ(spec, self.loaded.targets[spec.target]),
        )
        util = gpu_reader.utilization_pct if gpu_reader is not None else None
        backgrounds = BackgroundSet(jobs, policy, gpu_util_pct=util)
        backgrounds.start()
        try:
            yield backgrounds
        finally:
            backgrounds.stop()
            if gpu_reader is not None:
                gpu_reader.close()


def _launch_values(target: Target, directory: Path, run_id: str, attempt: int) -> dict[str, str]:
    """Placeholder values of one launch, the run directory absolute.

    The child runs in its own workdir, where a relative path would point elsewhere.
    """
    return placeholder_values(
        target, run_dir=str(directory.absolute()), run_id=run_id, attempt=str(attempt)
    )


def _intermediate_watch(
    spec: RunSpec, log_path: Path, on_point: PointCallback | None
) -> IntermediateWatch | None:
    """Search runs keep their intermediate metrics (and may be pruned on them)."""
    if spec.search is None:
        return None
    prune = spec.search.get("prune") or {}
    return IntermediateWatch(log_path, str(prune.get("step", "epoch")), on_point)


def _mark_combined(energy: EnergyBlock) -> None:
    """Parallel runs measure foreground and background together: say so on every figure."""
    for component in energy.components.values():
        if component.energy_j is None:
            continue
        component.attribution = "combined"
        note = "includes the background load of this parallel run"
        component.reason = f"{component.reason}; {note}" if component.reason else note
