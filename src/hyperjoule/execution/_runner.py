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
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperjoule._imports import import_optional
from hyperjoule.config import (
    LoadedStudy,
)
from hyperjoule.errors import StorageError
from hyperjoule.execution._guards import (
    Heartbeat,
    check_assets,
    check_results_dir,
    refuse_live_sessions,
)
from hyperjoule.execution._metering import MeterPool, meter_config, run_environ
from hyperjoule.execution._plan_state import PlanState, load_plan_state
from hyperjoule.execution._power import POWER_KNOB, GpuPowerLimits
from hyperjoule.execution._proctree import child_subreaper
from hyperjoule.execution._reaper import GroupReaper
from hyperjoule.execution._search_loop import SearchCounter, build_proposer, run_search
from hyperjoule.execution._session import RunObserver, SessionContext
from hyperjoule.execution._system import CPU_SYSFS_ROOT, SystemKnobs
from hyperjoule.meters import (
    Baseline,
    GpuTemperatureReader,
    Meter,
    gpu_temperature_reader,
    load_latest_baseline,
    measure_baseline,
    save_baseline,
    wait_until_idle,
)
from hyperjoule.records import RunRecord, RunSpec, RunStatus
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

    SIGHUP (the terminal or SSH session went away) is a stop like SIGTERM: the run in
    flight is recorded ``interrupted`` and the runner exits 130, instead of dying with
    the run left ``running``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not event.is_set():
            logger.warning("signal %d received: stopping after recording the current run", signum)
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
        rerun: Final statuses whose slots run again (``--rerun failed,timeout``); the
            earlier records stay, the new one becomes the slot's result.

    Raises:
        PreflightError: Declared assets are missing (nothing is written).
        StorageError: The results directory cannot be used.
    """
    # Every path handed to a child must be absolute: it runs in its own workdir.
    results_dir = Path(results_dir).absolute()
    check_assets(loaded)
    check_results_dir(results_dir)
    planned = _check_plan(loaded, results_dir, rerun)
    searching = [p for p in planned.searches if p.left]
    if searching:
        import_optional("optuna", extra="search", feature=f"{loaded.path}: mode: search")
    pool = MeterPool(meter_config(loaded), fixed=meters)
    try:
        pool.preflight(
            planned.todo + [p.setup.spec(0, dict(p.setup.space.base), -1) for p in searching],
            loaded.targets,
            allow_estimates=loaded.study.allow_estimates,
            study_path=loaded.path,
        )
    except BaseException:
        pool.close()
        raise
    knobs = SystemKnobs(loaded.study.system, cpu_sysfs_root)
    knobs.check()
    limits = GpuPowerLimits(loaded.study.system)
    try:
        _check_power_limits(limits, loaded, planned)
    except BaseException:
        limits.close()
        pool.close()
        raise
    stop = stop_event or threading.Event()
    with contextlib.ExitStack() as resources:
        # Released in reverse: meters, database, knobs restored, watchdog, lock last.
        resources.enter_context(StudyLock(results_dir, loaded.name))
        reaper = resources.enter_context(GroupReaper())
        # Orphaned descendants of runs come to us, not init: daemons are found and reaped.
        resources.enter_context(child_subreaper())
        knobs.reaper = reaper
        resources.enter_context(knobs)
        limits.reaper = reaper
        resources.callback(limits.close)
        store = resources.enter_context(ResultsStore(results_dir))
        resources.callback(pool.close)
        refuse_live_sessions(store, loaded.name)
        stale = store.mark_stale_running(loaded.name)
        if stale:
            logger.warning("%d run(s) left running by an earlier session marked interrupted", stale)
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
                context = SessionContext(loaded, store, results_dir, session, pool, reaper)
                context.rerun_of = state.rerun_of
                context.system = knobs.provenance()
                context.power_limits = limits
                if limits.skipped:
                    context.system["skipped"] = [*context.system["skipped"], *limits.skipped]
                context.baseline = _baseline(loaded, results_dir, pool, state, stop)
                with _Cooldown(context, stop) as cooldown:
                    _run_todo(context, state, stop, observer, result, cooldown)
                    _run_searches(context, state, stop, observer, result, cooldown)
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
    context: SessionContext,
    state: PlanState,
    stop: threading.Event,
    observer: RunObserver | None,
    result: StudyResult,
    cooldown: _Cooldown,
) -> None:
    """Run the unfinished runs in plan order, with cooldowns, until done or stopped."""
    for index, spec in enumerate(state.todo, start=1):
        if stop.is_set():
            return
        result.records.append(context.execute(spec, index, len(state.todo), stop, observer))
        if stop.is_set():
            return
        if index < len(state.todo):
            context.cooldown_before = cooldown.after(spec)


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


def _run_searches(
    context: SessionContext,
    state: PlanState,
    stop: threading.Event,
    observer: RunObserver | None,
    result: StudyResult,
    cooldown: _Cooldown,
) -> None:
    """Run the search experiments after the planned runs (they may warm-start from them)."""
    # The pause after the last planned run is due before the first trial.
    last = state.todo[-1] if result.records and state.todo else None
    counter = SearchCounter(len(state.todo), state.runs_left, last)
    for progress in state.searches:
        if stop.is_set():
            return
        if not progress.left:
            continue
        proposer = build_proposer(context.store, progress)

        def pause(spec: RunSpec) -> None:
            context.cooldown_before = cooldown.after(spec)

        run_search(context, proposer, stop, observer, counter, result.records, pause)


def _baseline(
    loaded: LoadedStudy,
    results_dir: Path,
    pool: MeterPool,
    state: PlanState,
    stop: threading.Event,
) -> Baseline | None:
    """The idle baseline for net energy: measured now (``baseline_s``) or the latest saved."""
    if loaded.study.baseline_s > 0 and state.todo and not stop.is_set():
        first = state.todo[0]
        meters = pool.for_run(first, run_environ(first, loaded.targets[first.target]))
        logger.info("measuring idle power for %.0f s (baseline_s)", loaded.study.baseline_s)
        baseline = measure_baseline(meters, loaded.study.baseline_s, stop=stop)
        save_baseline(results_dir, baseline)
        return baseline
    try:
        return load_latest_baseline(results_dir)
    except StorageError as e:
        logger.warning("ignoring the saved idle baseline: %s", e)
        return None


class _Cooldown:
    """Pauses between runs: fixed ``cooldown_s``, or until the GPUs are back near idle."""

    def __init__(self, context: SessionContext, stop: threading.Event) -> None:
        self._context = context
        self._stop = stop
        self._readers: dict[tuple[int, ...] | None, GpuTemperatureReader | None] = {}

    def __enter__(self) -> _Cooldown:
        return self

    def __exit__(self, *exc: object) -> None:
        for reader in self._readers.values():
            if reader is not None:
                reader.close()

    def after(self, spec: RunSpec) -> dict[str, Any] | None:
        """Cool down after ``spec``'s run; return what happened (for the next record)."""
        if spec.idle_cooldown_max_s is None or spec.idle_cooldown_within_c is None:
            if spec.cooldown_s > 0:
                self._stop.wait(spec.cooldown_s)
                return {"kind": "fixed", "waited_s": spec.cooldown_s}
            return None
        baseline = self._context.baseline
        if spec.gpus not in self._readers:
            self._readers[spec.gpus] = gpu_temperature_reader(
                gpu_indices=list(spec.gpus) if spec.gpus is not None else None
            )
        reader = self._readers[spec.gpus]
        target_c = baseline.gpu_temp_c if baseline is not None else None
        if reader is None or target_c is None:
            why = "no GPU temperature sensor" if reader is None else "no idle baseline temperature"
            logger.info("cooldown: %s; waiting the maximum %.0f s", why, spec.idle_cooldown_max_s)
            self._stop.wait(spec.idle_cooldown_max_s)
            return {
                "kind": "until_idle",
                "reached": False,
                "waited_s": spec.idle_cooldown_max_s,
                "reason": why,
            }
        reached, waited_s = wait_until_idle(
            reader, target_c, spec.idle_cooldown_within_c, spec.idle_cooldown_max_s, self._stop
        )
        return {
            "kind": "until_idle",
            "reached": reached,
            "waited_s": waited_s,
            "target_gpu_temp_c": target_c + spec.idle_cooldown_within_c,
        }


def _check_plan(loaded: LoadedStudy, results_dir: Path, rerun: Collection[RunStatus]) -> PlanState:
    """Plan without writing, so an impossible study is refused before anything exists."""
    if not (results_dir / DB_FILENAME).exists():
        return load_plan_state(loaded, None, save=False)
    with ResultsStore(results_dir, create=False) as store:
        return load_plan_state(loaded, store, save=False, rerun=rerun)
