"""Running a study: preflight, resources, then the coordinator loop over an executor.

``run_study`` checks everything that can be checked before anything is written (assets,
results directory, plan, meters, governor, executor), takes the study lock, starts the
orphan watchdog and the heartbeat, then hands the unfinished runs to
:func:`~hyperjoule.execution._coordinator.run_slots`: each becomes a
:class:`~hyperjoule.execution.RunTask`, an executor runs it (up to ``jobs`` at once),
and the recorder writes its record.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hyperjoule._imports import import_optional
from hyperjoule.config import ExecutorConfig, LoadedStudy
from hyperjoule.devices import NodeDevices
from hyperjoule.errors import StorageError
from hyperjoule.execution._build import TaskBuilder
from hyperjoule.execution._coordinator import PlannedRuns, RunObserver, RunSource, run_slots
from hyperjoule.execution._factory import create_executor
from hyperjoule.execution._guards import (
    Heartbeat,
    check_assets,
    check_results_dir,
    refuse_live_sessions,
)
from hyperjoule.execution._metering import meter_config, preflight_meters, run_environ
from hyperjoule.execution._plan_state import PlanState, load_plan_state
from hyperjoule.execution._power import POWER_KNOB, GpuPowerLimits
from hyperjoule.execution._proctree import child_subreaper
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.execution._recorder import Recorder, file_interrupted
from hyperjoule.execution._search_loop import SearchRuns
from hyperjoule.execution._system import CPU_SYSFS_ROOT, SystemKnobs
from hyperjoule.meters import (
    Baseline,
    Meter,
    load_latest_baseline,
    measure_baseline,
    save_baseline,
)
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import (
    DB_FILENAME,
    ResultsStore,
    StudyLock,
)

__all__ = ["StudyResult", "run_study"]

logger = logging.getLogger(__name__)


@dataclass
class StudyResult:
    """What a call of :func:`run_study` did."""

    study: str
    session: str  # "" when nothing was left to run (no session was started)
    planned: int
    already_done: int
    records: list[RunRecord] = field(default_factory=list)
    interrupted: bool = False
    changes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RunRecord]:
        """Records of this session that did not succeed (interrupted ones excluded)."""
        return [
            r for r in self.records if r.status not in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED)
        ]


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextmanager
def _sigint_sets(event: threading.Event) -> Iterator[None]:
    """While active, Ctrl-C (SIGINT), SIGTERM and SIGHUP set ``event`` instead of raising.

    SIGHUP (the terminal or SSH session went away) is a stop like SIGTERM: the runs in
    flight are recorded ``interrupted`` and the runner exits 130, instead of dying with
    the run left ``running``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not event.is_set():
            logger.warning(
                "signal %d received: stopping the runs in flight (recorded interrupted)", signum
            )
        event.set()

    previous = {s: signal.signal(s, handler) for s in _STOP_SIGNALS}
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
    rerun: Collection[RunStatus] = (),
    jobs: int | None = None,
    executor: ExecutorConfig | None = None,
) -> StudyResult:
    """Run (or resume) a study and record every run.

    Args:
        loaded: The validated study (see :func:`hyperjoule.config.load_study`).
        results_dir: Where the database and run directories live.
        observer: Receives progress events.
        stop_event: Set it to stop: the runs in flight are killed and recorded as
            interrupted. Ctrl-C sets it when this runs in the main thread.
        meters: Meters to use; by default those :func:`hyperjoule.meters.create_meters`
            finds on this machine.
        cpu_sysfs_root: Where CPU governors live (tests point it at a fake sysfs tree).
        rerun: Final statuses whose slots run again (``--rerun failed,timeout``); the
            earlier records stay, the new one becomes the slot's result.
        jobs: Runs at once (``--jobs``); overrides the study's ``executor.jobs``.
        executor: Executor settings; the study's ``executor`` by default.

    Raises:
        PreflightError: Declared assets are missing, or the executor cannot be set up
            (nothing is written).
        StorageError: The results directory cannot be used.
    """
    # Every path handed to a child must be absolute: it runs in its own workdir.
    results_dir = Path(results_dir).absolute()
    settings = executor or loaded.study.executor
    if jobs is not None:
        settings = settings.model_copy(update={"jobs": jobs})
    check_assets(loaded)
    check_results_dir(results_dir)
    planned = _check_plan(loaded, results_dir, rerun)
    searching = [p for p in planned.searches if p.left]
    if searching:
        import_optional("optuna", extra="search", feature=f"{loaded.path}: mode: search")
    devices = NodeDevices(meter_config(loaded), fixed=meters)
    try:
        preflight_meters(
            devices,
            planned.todo + [p.setup.spec(0, dict(p.setup.space.base), -1) for p in searching],
            loaded.targets,
            allow_estimates=loaded.study.allow_estimates,
            study_path=loaded.path,
        )
        knobs = SystemKnobs(loaded.study.system, cpu_sysfs_root)
        knobs.check()
        limits = GpuPowerLimits(loaded.study.system)
        try:
            _check_power_limits(limits, loaded, planned)
        except BaseException:
            limits.close()
            raise
    except BaseException:
        devices.close()
        raise
    stop = stop_event or threading.Event()
    with contextlib.ExitStack() as resources:
        # Released in reverse: database, knobs restored, lock, executor, watchdog, meters.
        resources.callback(devices.close)
        reaper = resources.enter_context(GroupReaper())
        # Orphaned descendants of runs come to us, not init: daemons are found and reaped.
        resources.enter_context(child_subreaper())
        limits.reaper = reaper
        resources.callback(limits.close)
        # Before the lock and the database: a refused executor leaves nothing behind.
        runner = create_executor(
            settings,
            devices=devices,
            tracker=reaper,
            results_dir=results_dir,
            allow_estimates=loaded.study.allow_estimates,
            power_limits=limits,
        )
        resources.callback(runner.shutdown, True)
        resources.enter_context(StudyLock(results_dir, loaded.name))
        knobs.reaper = reaper
        resources.enter_context(knobs)
        store = resources.enter_context(ResultsStore(results_dir))
        refuse_live_sessions(store, loaded.name)
        stale = store.mark_stale_running(loaded.name)
        if stale:
            file_interrupted(loaded, store, results_dir, stale)
            logger.warning(
                "%d run(s) left running by an earlier session marked interrupted", len(stale)
            )
        state = load_plan_state(loaded, store, save=True, rerun=rerun)
        if not state.runs_left:
            # Nothing left: no empty session, no empty summary.csv.
            return StudyResult(
                loaded.name, "", len(state.specs), len(state.done), changes=state.changes
            )
        session = store.begin_session(loaded.name, config=loaded.to_config_dict())
        result = StudyResult(
            loaded.name, session, len(state.specs), len(state.done), changes=state.changes
        )
        if observer is not None:
            observer.study_started(loaded.name, session, state)
        status = "completed"
        try:
            with _sigint_sets(stop), Heartbeat(results_dir, session):
                baseline = _baseline(loaded, results_dir, devices, state, stop)
                runner.use_baseline(baseline)
                recorder = Recorder(loaded, store, results_dir, session, executor_kind=runner.kind)
                recorder.rerun_of = state.rerun_of
                recorder.system = knobs.provenance()
                if limits.skipped:
                    recorder.system["skipped"] = [*recorder.system["skipped"], *limits.skipped]
                recorder.baseline = baseline
                builder = TaskBuilder(
                    loaded, results_dir, session, gpus_per_run=settings.gpus_per_run
                )
                sources: list[RunSource] = [PlannedRuns(state.todo)]
                # Searches after the planned runs: they may warm-start from them.
                sources += [SearchRuns(store, p, observer) for p in state.searches if p.left]
                with runner:
                    run_slots(
                        sources,
                        state.runs_left,
                        executor=runner,
                        builder=builder,
                        recorder=recorder,
                        stop=stop,
                        observer=observer,
                        on_record=result.records.append,
                    )
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


def _check_power_limits(limits: GpuPowerLimits, loaded: LoadedStudy, planned: PlanState) -> None:
    """Every power limit the study may set, checked before anything is written."""
    specs = list(planned.todo)
    for progress in planned.searches:
        if not progress.left:
            continue
        setup = progress.setup
        base = dict(setup.space.base)
        specs.append(setup.spec(0, base, -1))
        hp = setup.target_config.hyperparameters.get(POWER_KNOB)
        if POWER_KNOB in setup.space.names and hp is not None and hp.range is not None:
            for end in hp.range:  # a searched limit: both ends of its range
                specs.append(setup.spec(0, {**base, POWER_KNOB: end}, -1))
    for spec in specs:
        if POWER_KNOB in spec.hyperparameters:
            limits.check([spec], run_environ(spec, loaded.targets[spec.target]))


def _baseline(
    loaded: LoadedStudy,
    results_dir: Path,
    devices: NodeDevices,
    state: PlanState,
    stop: threading.Event,
) -> Baseline | None:
    """The idle baseline for net energy: measured now (``baseline_s``) or the latest saved."""
    if loaded.study.baseline_s > 0 and state.todo and not stop.is_set():
        first = state.todo[0]
        meters = devices.meters_for(first.gpus, run_environ(first, loaded.targets[first.target]))
        logger.info("measuring idle power for %.0f s (baseline_s)", loaded.study.baseline_s)
        baseline = measure_baseline(meters, loaded.study.baseline_s, stop=stop)
        save_baseline(results_dir, baseline)
        return baseline
    try:
        return load_latest_baseline(results_dir)
    except StorageError as e:
        logger.warning("ignoring the saved idle baseline: %s", e)
        return None


def _check_plan(loaded: LoadedStudy, results_dir: Path, rerun: Collection[RunStatus]) -> PlanState:
    """Plan without writing, so an impossible study is refused before anything exists."""
    if not (results_dir / DB_FILENAME).exists():
        return load_plan_state(loaded, None, save=False)
    with ResultsStore(results_dir, create=False) as store:
        return load_plan_state(loaded, store, save=False, rerun=rerun)
