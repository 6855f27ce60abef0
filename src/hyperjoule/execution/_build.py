"""Turning a planned run into self-contained tasks, once per attempt, from the config.

This is the only place that reads the loaded targets on the way to execution: argv with
placeholders expanded, environment overrides, timeouts, metric rules, backgrounds and
cooldown all go into the :class:`~hyperjoule.execution.RunTask`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperjoule.config import (
    OFFLINE_ENV,
    LoadedStudy,
    Target,
    format_value,
    placeholder_values,
    resolve_command,
    resolve_env,
)
from hyperjoule.execution._power import POWER_KNOB
from hyperjoule.execution._task import (
    BackgroundTask,
    CooldownPolicy,
    MetricRule,
    RunTask,
    background_dir,
)
from hyperjoule.records import RunSpec
from hyperjoule.storage import run_dir

__all__ = ["TaskBuilder", "build_argv"]

METRICS_FILENAME = "metrics.json"


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


class TaskBuilder:
    """Builds the :class:`RunTask` of each attempt of the runs of one session.

    Args:
        loaded: The validated study.
        results_dir: The results directory (made absolute: children run elsewhere).
        session: The session id.
        gpus_per_run: Whole GPUs each run gets (``executor.gpus_per_run``) unless the
            run names its own ``gpus``.
    """

    def __init__(
        self, loaded: LoadedStudy, results_dir: Path, session: str, *, gpus_per_run: int = 0
    ) -> None:
        self.loaded = loaded
        self.results_dir = Path(results_dir).absolute()
        self.session = session
        self.gpus_per_run = gpus_per_run

    def run_dir(self, spec: RunSpec, run_id: str) -> Path:
        """The absolute run directory of ``run_id``."""
        return run_dir(self.results_dir, spec.study, self.session, run_id)

    def build(self, spec: RunSpec, run_id: str, attempt: int) -> RunTask:
        """The task of attempt ``attempt`` (from 1) of run ``run_id`` of ``spec``."""
        target = self.loaded.targets[spec.target]
        directory = str(self.run_dir(spec, run_id))
        values = placeholder_values(target, run_dir=directory, run_id=run_id, attempt=str(attempt))
        env = _env(target, values)
        env.update(
            HYPERJOULE_RUN_DIR=directory,
            HYPERJOULE_METRICS_FILE=f"{directory}/{METRICS_FILENAME}",
            HYPERJOULE_RUN_ID=run_id,
            HYPERJOULE_ATTEMPT=str(attempt),
        )
        backgrounds = tuple(
            self._background(n, bg, directory, run_id, attempt)
            for n, bg in enumerate(spec.background if spec.mode == "parallel" else (), start=1)
        )
        return RunTask(
            run_id=run_id,
            attempt=attempt,
            slot_id=spec.slot_id,
            study=spec.study,
            target=spec.target,
            model=spec.model,
            mode=spec.mode,
            argv=tuple(build_argv(target, spec.model, spec.hyperparameters, values)),
            cwd=str(Path(target.workdir).absolute()),
            run_dir=directory,
            env=env,
            timeout_s=target.timeout_s,
            metrics=tuple(
                MetricRule(name, m.regex, m.match, m.goal) for name, m in target.metrics.items()
            ),
            required_metrics=tuple(target.required_metrics),
            background=backgrounds,
            background_policy=spec.background_policy if backgrounds else None,
            gpus=spec.gpus,
            gpus_per_run=self.gpus_per_run if spec.gpus is None else 0,
            cooldown=CooldownPolicy(
                fixed_s=spec.cooldown_s,
                until_idle_max_s=spec.idle_cooldown_max_s,
                until_idle_within_c=spec.idle_cooldown_within_c,
            ),
            intermediate_step=_intermediate_step(spec),
            gpu_power_limit_w=(
                float(spec.hyperparameters[POWER_KNOB])
                if POWER_KNOB in spec.hyperparameters
                else None
            ),
        )

    def _background(
        self, n: int, bg: Any, directory: str, run_id: str, attempt: int
    ) -> BackgroundTask:
        target = self.loaded.targets[bg.target]
        bg_dir = background_dir(directory, attempt, n, bg.target)
        values = placeholder_values(target, run_dir=bg_dir, run_id=run_id, attempt=str(attempt))
        env = _env(target, values)
        # A script that always writes its metrics file must not crash as a background.
        env.update(
            HYPERJOULE_RUN_DIR=bg_dir,
            HYPERJOULE_METRICS_FILE=f"{bg_dir}/{METRICS_FILENAME}",
            HYPERJOULE_RUN_ID=run_id,
            HYPERJOULE_ATTEMPT=str(attempt),
            HYPERJOULE_BACKGROUND="1",
        )
        return BackgroundTask(
            target=bg.target,
            model=bg.model,
            hyperparameters=dict(bg.hyperparameters),
            argv=tuple(build_argv(target, bg.model, bg.hyperparameters, values)),
            cwd=str(Path(target.workdir).absolute()),
            env=env,
            timeout_s=target.timeout_s,
        )


def _intermediate_step(spec: RunSpec) -> str | None:
    """Search runs keep their intermediate metrics (and may be pruned on them)."""
    if spec.search is None:
        return None
    prune = spec.search.get("prune") or {}
    return str(prune.get("step", "epoch"))


def _env(target: Target, values: dict[str, str]) -> dict[str, str]:
    """A target's environment overrides: its ``env`` expanded, offline variables."""
    env = resolve_env(target, values)
    if target.offline:
        env.update(OFFLINE_ENV)
    return env
