"""Parallel mode's background load: supervised, restarted, measured, and judged.

In the lab workflow the background was a shell loop nobody watched: a model that did not
exist "trained" 103 times for one second each and the foreground ran with no load at
all. Here every background run is a supervised process group with its own log and
record; it is restarted when it ends (with a growing pause when it keeps failing), its
load is measured, and a background that crashes, ends within seconds or never loads
the machine is flagged ``effective: false``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperjoule.devices import CLK_TCK, group_cpu_ticks
from hyperjoule.execution._process import ProcessResult, run_process
from hyperjoule.execution._tracking import GroupTracker
from hyperjoule.records import BackgroundPolicy, BackgroundSpec

__all__ = ["BackgroundJob", "BackgroundSet", "group_cpu_ticks"]

logger = logging.getLogger(__name__)

BACKGROUND_GRACE_S = 0.5
"""SIGTERM-to-SIGKILL grace of a background: it must stop within a second."""

MAX_BACKOFF_S = 30.0
"""Longest pause before restarting a background that keeps failing."""

LOAD_SAMPLE_S = 0.25
"""Period of the background load sampler."""

_CLK_TCK = CLK_TCK


@dataclass
class _LoadSample:
    time_s: float
    cpu_pct: float | None
    gpu_pct: float | None


@dataclass
class BackgroundJob:
    """One background target looping in its own process groups.

    ``directory`` is ``<run_dir>/background/attempt-<n>/<k>-<target>``; logs are
    recorded relative to the run directory.
    """

    spec: BackgroundSpec
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    directory: Path
    policy: BackgroundPolicy
    reaper: GroupTracker
    timeout_s: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    samples: list[_LoadSample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pgid: int = 0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the supervising thread (first background run at once)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._supervise, name=f"background-{self.spec.target}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Kill the running background group and wait for the supervisor to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _started(self, pid: int) -> None:
        self._pgid = pid
        self.reaper.track(pid)

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            n = len(self.runs) + 1
            started_at = time.time()
            result = run_process(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                log_path=self.directory / f"run-{n}.log",
                timeout_s=self.timeout_s,
                grace_s=BACKGROUND_GRACE_S,
                stop_event=self._stop,
                on_start=self._started,
            )
            self.reaper.untrack(result.pid)
            self._pgid = 0
            self.runs.append(_run_entry(n, started_at, result, self.directory.parents[2]))
            if self._stop.is_set():
                return
            healthy = result.exit_code == 0 and (
                result.duration_s >= self.policy.min_background_run_s
            )
            failures = 0 if healthy else failures + 1
            if failures:
                pause_s = min(MAX_BACKOFF_S, 0.5 * 2 ** (failures - 1))
                logger.info(
                    "background %s run %d ended after %.1f s (exit %s); restarting in %.1f s",
                    self.spec.target,
                    n,
                    result.duration_s,
                    result.exit_code,
                    pause_s,
                )
                self._stop.wait(pause_s)

    @property
    def pgid(self) -> int:
        """Process group of the background run in progress (0 between runs)."""
        return self._pgid

    def judge(self, window: tuple[float, float]) -> tuple[bool, list[str], dict[str, Any]]:
        """Say whether the background loaded the machine during ``window`` (monotonic s).

        Returns:
            (effective, reasons it was not, measured load over the window).
        """
        reasons: list[str] = []
        ended = [r for r in self.runs if not r["stopped_by_hyperjoule"]]
        crashed = [r for r in ended if r["exit_code"] != 0]
        if not self.runs:
            reasons.append("no background run started")
        if crashed:
            first = crashed[0]
            reasons.append(
                f"{len(crashed)} background run(s) failed (run {first['run']}: "
                f"exit {first['exit_code']}, signal {first['signal']}; see {first['log']})"
            )
        short = [r for r in ended if r["duration_s"] < self.policy.min_background_run_s]
        load = self.load_over(window)
        # A GPU job loads the GPU, a CPU job the CPU: either counts.
        levels = [
            (value, basis)
            for value, basis in (
                (load["gpu_util_mean_pct"], "GPU utilisation"),
                (load["cpu_util_mean_pct"], "CPU use (% of one core)"),
            )
            if value is not None
        ]
        level, basis = max(levels) if levels else (None, "")
        if level is None:
            reasons.append("background load could not be measured")
        elif level < self.policy.load_threshold_pct:
            reasons.append(
                f"background {basis} averaged {level:.0f} % during the foreground, "
                f"below the {self.policy.load_threshold_pct:g} % threshold"
            )
        if short and not crashed:
            # The measured load decides: short jobs that exit 0 and keep the machine
            # loaded are a realistic background, worth a note but not a failure.
            what = (
                f"{len(short)} background run(s) ended within "
                f"{self.policy.min_background_run_s:g} s"
            )
            if reasons or level is None:
                reasons.append(what)
            else:
                self.notes.append(f"{what}; the measured load stayed above the threshold")
        return not reasons, reasons, load

    def load_over(self, window: tuple[float, float]) -> dict[str, Any]:
        """Mean CPU and GPU load of this background inside ``window``."""
        inside = [s for s in self.samples if window[0] <= s.time_s <= window[1]]
        cpu = [s.cpu_pct for s in inside if s.cpu_pct is not None]
        gpu = [s.gpu_pct for s in inside if s.gpu_pct is not None]
        return {
            "cpu_util_mean_pct": sum(cpu) / len(cpu) if cpu else None,
            "gpu_util_mean_pct": sum(gpu) / len(gpu) if gpu else None,
            "samples": len(inside),
        }

    def summary(self) -> dict[str, Any]:
        """The job's identity and runs, for the run record."""
        return {
            "target": self.spec.target,
            "model": self.spec.model,
            "hyperparameters": dict(self.spec.hyperparameters),
            "command": list(self.argv),
            "runs": {
                "count": len(self.runs),
                "durations_s": [r["duration_s"] for r in self.runs],
                "exit_codes": [r["exit_code"] for r in self.runs],
                "details": list(self.runs),
            },
        }


def _run_entry(n: int, started_at: float, result: ProcessResult, run_dir: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "run": n,
        "started_at": started_at,
        "duration_s": result.duration_s,
        "exit_code": result.exit_code,
        "signal": result.signal,
        "stopped_by_hyperjoule": result.interrupted,
        "timed_out": result.timed_out,
        "cpu_time_s": result.cpu_time_s,
        "log": str(result.log_path.relative_to(run_dir)),  # relative: records stay portable
    }
    if result.escaped:  # daemons this background run left behind (killed)
        entry["escaped_processes"] = [e.to_dict() for e in result.escaped]
    return entry


class BackgroundSet:
    """All backgrounds of one parallel run, plus the sampler of their load."""

    def __init__(
        self,
        jobs: Sequence[BackgroundJob],
        policy: BackgroundPolicy,
        gpu_util_pct: Callable[[], float | None] | None = None,
    ) -> None:
        self.jobs = list(jobs)
        self.policy = policy
        self._gpu_util_pct = gpu_util_pct
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="background-load", daemon=True)
        self.warmup_s: float | None = None
        self.loaded_at_start = False
        self.stopped_at_s: float | None = None  # monotonic time when every job had ended

    def start(self) -> None:
        """Start every background and the load sampler."""
        for job in self.jobs:
            job.start()
        self._sampler.start()

    def _sample(self) -> None:
        last: dict[int, tuple[int, int, float]] = {}  # job -> (pgid, ticks, time)
        while not self._stop.wait(LOAD_SAMPLE_S):
            now = time.monotonic()
            gpu = self._read_gpu()
            for i, job in enumerate(self.jobs):
                pgid = job.pgid
                cpu: float | None = None
                if pgid:
                    ticks = group_cpu_ticks(pgid)
                    prev = last.get(i)
                    if prev is not None and prev[0] == pgid and now > prev[2] and ticks >= prev[1]:
                        # A process that exits takes its ticks along: that interval's load
                        # is unknown (None), not 0 (short jobs would read as idle).
                        cpu = 100.0 * (ticks - prev[1]) / _CLK_TCK / (now - prev[2])
                    last[i] = (pgid, ticks, now)
                job.samples.append(_LoadSample(now, cpu, gpu))

    def _read_gpu(self) -> float | None:
        if self._gpu_util_pct is None:
            return None
        try:
            return self._gpu_util_pct()
        except Exception as e:  # a sensor hiccup must not end the sampler
            logger.debug("GPU utilisation unreadable: %s", e)
            return None

    def wait_until_loaded(self, stop: threading.Event) -> None:
        """Block until the backgrounds load the machine (bounded by the policy)."""
        start = time.monotonic()
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= self.policy.warmup_max_s:
                logger.warning(
                    "background not loaded after %.0f s of warm-up; starting the foreground",
                    elapsed,
                )
                break
            if elapsed >= self.policy.warmup_min_s and self._loaded(since=start):
                self.loaded_at_start = True
                break
            stop.wait(LOAD_SAMPLE_S / 2)
        self.warmup_s = time.monotonic() - start

    def _loaded(self, since: float) -> bool:
        recent = time.monotonic() - 1.0
        for job in self.jobs:
            window = [s for s in job.samples if s.time_s >= max(since, recent)]
            gpu = [s.gpu_pct for s in window if s.gpu_pct is not None]
            cpu = [s.cpu_pct for s in window if s.cpu_pct is not None]
            means = [sum(v) / len(v) for v in (gpu, cpu) if v]
            if not means or max(means) < self.policy.load_threshold_pct:
                return False
        return True

    def stop(self) -> None:
        """Stop every background (SIGTERM, short grace, SIGKILL) and the sampler."""
        threads = [threading.Thread(target=job.stop) for job in self.jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.stopped_at_s = time.monotonic()
        self._stop.set()
        if self._sampler.is_alive():
            self._sampler.join()

    def record(self, window: tuple[float, float]) -> dict[str, Any]:
        """The record's ``background`` block for a foreground that ran during ``window``."""
        jobs: list[dict[str, Any]] = []
        reasons: list[str] = []
        notes: list[str] = []
        for job in self.jobs:
            job.notes.clear()
            effective, why, load = job.judge(window)
            jobs.append(
                {
                    **job.summary(),
                    "effective": effective,
                    "reasons": why,
                    "notes": list(job.notes),
                    "load": load,
                }
            )
            reasons += [f"{job.spec.target}: {r}" for r in why]
            notes += [f"{job.spec.target}: {n}" for n in job.notes]
        first = jobs[0]
        return {
            # The first background's fields at the top level: one flat shape for the
            # common single-background case; every background is under "jobs".
            "target": first["target"],
            "model": first["model"],
            "hyperparameters": first["hyperparameters"],
            "runs": {k: v for k, v in first["runs"].items() if k != "details"},
            "load": first["load"],
            "effective": not reasons,
            "reasons": reasons,
            "notes": notes,
            "warmup_s": self.warmup_s,
            # How long the background outlived the foreground (the goal is under 1 s).
            "stopped_after_foreground_s": (
                self.stopped_at_s - window[1] if self.stopped_at_s is not None else None
            ),
            "loaded_at_start": self.loaded_at_start,
            "jobs": jobs,
        }
