"""Expanding a study into fully resolved runs (:class:`~hyperjoule.records.RunSpec`).

Plans are reproducible: each experiment draws from its own generator seeded by the
study ``seed`` and the experiment's index, so editing one experiment leaves the others'
configurations unchanged (which is what lets a re-run of an edited study resume).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hyperjoule.config import (
    BackgroundConfig,
    Hyperparameter,
    LoadedStudy,
    MutationExperiment,
    ParallelExperiment,
    SearchExperiment,
    Target,
    canonical_key,
    coerce_value,
)
from hyperjoule.errors import PlanError
from hyperjoule.planning._distributions import sample_value, space_size
from hyperjoule.records import BackgroundPolicy, BackgroundSpec, HyperValue, RunSpec

__all__ = ["MeasuredKeys", "plan_study", "resolve_hyperparameters"]

MeasuredKeys = Callable[[str, "str | None"], Collection[str]]
"""Returns the dedup keys already measured for a (target, model)."""

_DRAWS_PER_RUN = 200  # rejection-sampling draws before enumerating what is left
_ENUMERATE_MAX = 100_000  # finite spaces up to this size are enumerated when sampling stalls


def resolve_hyperparameters(target: Target, overrides: Mapping[str, Any]) -> dict[str, HyperValue]:
    """Return every declared hyperparameter of ``target``: its default or the override."""
    return {
        name: coerce_value(hp, overrides.get(name, hp.default))
        for name, hp in target.hyperparameters.items()
    }


@dataclass
class _Run:
    """What an experiment asks for, whatever its mode."""

    target: str
    model: str | None
    runs: int
    overrides: Mapping[str, Any]
    mutate: Sequence[str] | None
    strategy: str


def plan_study(loaded: LoadedStudy, measured_keys: MeasuredKeys | None = None) -> list[RunSpec]:
    """Expand every experiment of a study into runs.

    Args:
        loaded: The validated study.
        measured_keys: Dedup keys already in the results database for a target and
            model; mutation never plans one of them again.

    Raises:
        PlanError: An experiment asks for more distinct configurations than its space
            (minus those already measured) holds.
    """
    study = loaded.study
    specs: list[RunSpec] = []
    seen: set[str] = set()
    for index, exp in enumerate(study.experiments):
        if isinstance(exp, SearchExperiment):
            continue  # proposed as results arrive (planning/_search.py), not planned ahead
        background: tuple[BackgroundSpec, ...] = ()
        policy: BackgroundPolicy | None = None
        mode: Literal["default", "mutation", "parallel"]
        if isinstance(exp, ParallelExperiment):
            fg = exp.foreground
            request = _Run(
                fg.target,
                fg.model,
                fg.runs or study.defaults.runs,
                fg.hyperparameters,
                _names(loaded, fg.target, fg.mutate),
                fg.strategy,
            )
            background = tuple(_background(loaded, bg) for bg in exp.backgrounds)
            policy = BackgroundPolicy(
                warmup_min_s=exp.warmup_min_s,
                warmup_max_s=exp.warmup_max_s,
                load_threshold_pct=exp.load_threshold_pct,
                min_background_run_s=exp.min_background_run_s,
                require_effective_background=exp.require_effective_background,
            )
            mode = "parallel"
        elif isinstance(exp, MutationExperiment):
            request = _Run(
                exp.target,
                exp.model,
                exp.runs or study.defaults.runs,
                exp.hyperparameters,
                _names(loaded, exp.target, exp.mutate),
                exp.strategy,
            )
            mode = "mutation"
        else:
            request = _Run(
                exp.target,
                exp.model,
                exp.runs or study.defaults.runs,
                exp.hyperparameters,
                None,
                "joint",
            )
            mode = "default"
        target = loaded.targets[request.target]
        model = _model_of(target, request.model)
        base = resolve_hyperparameters(target, request.overrides)
        rng = random.Random(f"{study.seed}:{index}")
        where = f"{loaded.path}: experiments.{index}.runs"

        def key_of(
            values: Mapping[str, HyperValue],
            _t: str = request.target,
            _m: str | None = model,
            _mode: str = mode,
        ) -> str:
            return canonical_key(_t, _m, _mode, values, loaded.targets[_t].hyperparameters)

        configs: list[tuple[dict[str, HyperValue], tuple[str, ...]]]
        if request.mutate is None:
            configs = [(dict(base), ()) for _ in range(request.runs)]
        else:
            taken = set(seen)
            if measured_keys is not None:
                taken |= set(measured_keys(request.target, model))
            taken.add(key_of(base))  # mutation never plans the all-default configuration
            configs = _mutations(target, base, request, rng, key_of, taken, where)
        gpu_list = _pick(exp.gpus, _pick(study.defaults.gpus, target.gpus))
        gpus = tuple(gpu_list) if gpu_list is not None else None
        idle = _pick(exp.cooldown, study.defaults.cooldown)
        for n, (values, mutated) in enumerate(configs, start=1):
            key = key_of(values)
            seen.add(key)
            specs.append(
                RunSpec(
                    slot_id=f"e{index}-{n}",
                    study=study.name,
                    experiment=index,
                    target=request.target,
                    model=model,
                    mode=mode,
                    hyperparameters=values,
                    mutated=tuple(mutated),
                    dedup_key=key,
                    max_retries=_pick(exp.max_retries, study.defaults.max_retries),
                    retry_on=tuple(_pick(exp.retry_on, study.defaults.retry_on)),
                    cooldown_s=float(_pick(exp.cooldown_s, study.defaults.cooldown_s)),
                    background=background,
                    background_policy=policy,
                    gpus=gpus,
                    idle_cooldown_max_s=idle.max_s if idle is not None else None,
                    idle_cooldown_within_c=idle.until_gpu_temp_within_c if idle else None,
                )
            )
    return specs


def _pick(value: Any, default: Any) -> Any:
    """The experiment's own setting, or the inherited one when it has none."""
    return default if value is None else value


def _model_of(target: Target, model: str | None) -> str | None:
    if model is None and target.models:
        return target.models[0]  # the loader allows this only for single-model targets
    return model


def _names(loaded: LoadedStudy, target: str, mutate: str | list[str] | None) -> list[str] | None:
    if mutate is None:
        return None
    if mutate == "all":
        names = [n for n, hp in loaded.targets[target].hyperparameters.items() if hp.mutable]
        if not names:
            raise PlanError(
                f"target '{target}' has no hyperparameter with a range or choices to mutate"
            )
        return names
    return list(mutate)


def _background(loaded: LoadedStudy, bg: BackgroundConfig) -> BackgroundSpec:
    target = loaded.targets[bg.target]
    return BackgroundSpec(
        target=bg.target,
        model=_model_of(target, bg.model),
        hyperparameters=resolve_hyperparameters(target, bg.hyperparameters),
    )


def _mutations(
    target: Target,
    base: dict[str, HyperValue],
    request: _Run,
    rng: random.Random,
    key_of: Callable[[Mapping[str, HyperValue]], str],
    taken: set[str],
    where: str,
) -> list[tuple[dict[str, HyperValue], tuple[str, ...]]]:
    assert request.mutate is not None
    groups = (
        [list(request.mutate)] if request.strategy == "joint" else [[n] for n in request.mutate]
    )
    configs: list[tuple[dict[str, HyperValue], tuple[str, ...]]] = []
    for names in groups:
        hps = [target.hyperparameters[n] for n in names]
        capacity = math.prod(space_size(hp) for hp in hps)
        if capacity - 1 < request.runs:
            raise PlanError(
                f"{where}: asks for {request.runs} distinct configurations of "
                f"{', '.join(names)}, but the space holds only {capacity - 1:g} besides the "
                "defaults; lower 'runs' or widen the range"
            )
        for _ in range(request.runs):
            values = _draw_new(base, names, hps, rng, key_of, taken, capacity)
            if values is None:
                raise PlanError(
                    f"{where}: cannot find {request.runs} distinct new configurations of "
                    f"{', '.join(names)}: the space holds {capacity:g}, and the defaults and "
                    "configurations already planned or measured are excluded; lower 'runs' "
                    "or widen the range"
                )
            taken.add(key_of(values))
            mutated = tuple(n for n in names if values[n] != base[n])
            configs.append((values, mutated))
    return configs


def _draw_new(
    base: dict[str, HyperValue],
    names: list[str],
    hps: list[Hyperparameter],
    rng: random.Random,
    key_of: Callable[[Mapping[str, HyperValue]], str],
    taken: set[str],
    capacity: float,
) -> dict[str, HyperValue] | None:
    """Draw a configuration whose key is not taken; None when none is left."""
    for _ in range(_DRAWS_PER_RUN):
        values = dict(base)
        for name, hp in zip(names, hps, strict=True):
            values[name] = sample_value(hp, rng)
        if key_of(values) not in taken:
            return values
    if capacity > _ENUMERATE_MAX:
        return None
    # A nearly exhausted finite space: pick among what is left instead of guessing on.
    left = []
    for combo in itertools.product(*(_all_values(hp) for hp in hps)):
        values = {**base, **dict(zip(names, combo, strict=True))}
        if key_of(values) not in taken:
            left.append(values)
    return rng.choice(left) if left else None


def _all_values(hp: Hyperparameter) -> list[HyperValue]:
    if hp.choices is not None:
        return list(hp.choices)
    assert hp.range is not None and hp.type == "int"
    values: list[HyperValue] = list(range(int(hp.range[0]), int(hp.range[1]) + 1))
    if hp.zero_probability and 0 not in values:
        values.insert(0, 0)
    return values
