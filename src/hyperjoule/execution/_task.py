"""What an executor needs to run one attempt: a self-contained, picklable :class:`RunTask`.

A task is built once by the coordinator from the plan and the loaded targets
(:func:`~hyperjoule.execution.build_task`); from then on nothing looks at the config
again. Tasks cross process and host boundaries (Ray pickles them), so they hold only
plain data: strings, numbers, tuples and frozen dataclasses of those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from hyperjoule.records import BackgroundPolicy, HyperValue
from hyperjoule.storage import path_component

__all__ = ["BackgroundTask", "CooldownPolicy", "MetricRule", "RunTask", "background_dir"]


def background_dir(run_dir: str, attempt: int, n: int, target: str) -> str:
    """Directory of the ``n``-th background (from 1) of one attempt of a parallel run.

    Raises:
        StorageError: The target name would leave the run directory.
    """
    # Confined to the run directory even if a name slipped past the config checks.
    name = path_component("background target", f"{n}-{target}")
    return f"{run_dir}/background/attempt-{attempt}/{name}"


@dataclass(frozen=True)
class CooldownPolicy:
    """The pause an executor makes on a task's devices after its attempt.

    Attributes:
        fixed_s: Pause in seconds (``cooldown_s``); 0 for none.
        until_idle_max_s: With ``until_idle_within_c``: wait until the GPUs are this
            close to their idle temperature, at most this long (seconds).
        until_idle_within_c: Degrees C above the idle baseline that count as cool.
    """

    fixed_s: float = 0.0
    until_idle_max_s: float | None = None
    until_idle_within_c: float | None = None

    @property
    def active(self) -> bool:
        """True when the policy pauses at all."""
        return self.fixed_s > 0 or (
            self.until_idle_max_s is not None and self.until_idle_within_c is not None
        )


@dataclass(frozen=True)
class MetricRule:
    """How to read one performance metric of a run.

    Attributes:
        name: Metric name as recorded.
        regex: Fallback pattern with one numeric capture group; None when the metric
            arrives only as a structured line or in the metrics file.
        match: Which regex match counts (``first`` or ``last``).
        goal: Declared direction (``minimize``/``maximize``); None when undeclared.
    """

    name: str
    regex: str | None = None
    match: Literal["first", "last"] = "last"
    goal: Literal["minimize", "maximize"] | None = None


@dataclass(frozen=True)
class BackgroundTask:
    """One background load of a parallel-mode run, ready to launch (and relaunch).

    Attributes:
        target: Target name of the background.
        model: Its model, or None.
        hyperparameters: Its resolved hyperparameters (for the record).
        argv: Its full command (no shell).
        cwd: Absolute working directory on the executing node.
        env: Environment *overrides* (applied over the executing node's environment).
        timeout_s: Limit of one background run, in seconds (None: none).
    """

    target: str
    model: str | None
    hyperparameters: dict[str, HyperValue]
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None


@dataclass(frozen=True)
class RunTask:
    """Everything needed to execute one attempt of one run, and nothing more.

    The coordinator builds one task per attempt (placeholders such as ``{attempt}`` are
    already expanded). An executor may only change ``assigned_gpus`` (with
    :meth:`with_gpus`) and, for remote nodes, ``run_dir`` (with :meth:`with_run_dir`).

    Attributes:
        run_id: Globally unique id of the run (the same for every attempt).
        attempt: Attempt number, from 1.
        slot_id: Plan slot of the run (for logs and progress).
        study: Study name.
        target: Target name.
        model: Model name or None.
        mode: ``default``, ``mutation``, ``parallel`` or ``search``.
        argv: Full command (no shell), placeholders expanded.
        cwd: Absolute working directory on the executing node.
        env: Environment *overrides*: the target's ``env``, offline variables and
            ``HYPERJOULE_*`` variables. The attempt executor applies them over the
            executing node's ``os.environ`` and sets ``CUDA_VISIBLE_DEVICES`` from
            ``assigned_gpus``.
        timeout_s: Wall-clock limit of the attempt, in seconds (None: none).
        run_dir: Absolute run directory the attempt writes into.
        metrics: How to read each declared metric.
        required_metrics: Metrics a successful attempt must report.
        background: Background loads (parallel mode), started before the foreground.
        background_policy: Warm-up and judgement of the backgrounds.
        gpus: GPU indices the plan asks for explicitly (``gpus:`` in the config); None:
            the executor chooses (``gpus_per_run``) or the inherited
            ``CUDA_VISIBLE_DEVICES`` applies.
        gpus_per_run: Number of whole GPUs the run needs; 0 for a CPU-only run.
        assigned_gpus: GPU indices the executor gave this attempt (NVML numbering);
            None until assigned, or when the run inherits ``CUDA_VISIBLE_DEVICES``.
        grace_s: Seconds between SIGTERM and SIGKILL when a process group is stopped.
        cooldown: Pause on this attempt's devices after it, before the executor places
            another attempt on them (None: no pause).
        gpu_power_limit_w: The ``gpu_power_limit_w`` knob: the executor sets this power
            limit on the attempt's GPUs for its duration (None: left as it is).
        intermediate_step: Search runs: the step key (``epoch``) of the intermediate
            metrics lines to follow while the run is in flight (pruning); None: none.
    """

    run_id: str
    attempt: int
    slot_id: str
    study: str
    target: str
    model: str | None
    mode: str
    argv: tuple[str, ...]
    cwd: str
    run_dir: str
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    metrics: tuple[MetricRule, ...] = ()
    required_metrics: tuple[str, ...] = ()
    background: tuple[BackgroundTask, ...] = ()
    background_policy: BackgroundPolicy | None = None
    gpus: tuple[int, ...] | None = None
    gpus_per_run: int = 0
    assigned_gpus: tuple[int, ...] | None = None
    grace_s: float = 5.0
    cooldown: CooldownPolicy | None = None
    intermediate_step: str | None = None
    gpu_power_limit_w: float | None = None

    @property
    def device_gpus(self) -> tuple[int, ...] | None:
        """The GPUs this attempt runs and is measured on (assigned, else requested)."""
        return self.assigned_gpus if self.assigned_gpus is not None else self.gpus

    @property
    def log_name(self) -> str:
        """File name of this attempt's output in the run directory (``attempt-2.log``)."""
        return f"attempt-{self.attempt}.log"

    def with_gpus(self, gpus: tuple[int, ...] | None) -> RunTask:
        """A copy given ``gpus`` (what an executor does when it places the task)."""
        return dataclasses.replace(self, assigned_gpus=gpus)

    def with_run_dir(self, run_dir: str) -> RunTask:
        """A copy writing into ``run_dir`` (a remote node's staging directory).

        ``HYPERJOULE_RUN_DIR`` and ``HYPERJOULE_METRICS_FILE`` follow; any other path
        the coordinator expanded from ``{run_dir}`` into ``argv`` or ``env`` is rewritten
        as well (every occurrence of the old directory is replaced).
        """
        old = self.run_dir

        def move(value: str) -> str:
            return value.replace(old, run_dir)

        backgrounds = tuple(
            dataclasses.replace(
                bg,
                argv=tuple(move(a) for a in bg.argv),
                env={k: move(v) for k, v in bg.env.items()},
            )
            for bg in self.background
        )
        return dataclasses.replace(
            self,
            run_dir=run_dir,
            argv=tuple(move(a) for a in self.argv),
            env={k: move(v) for k, v in self.env.items()},
            background=backgrounds,
        )
