"""Schema of ``targets.yaml``: how to launch each training target and what it accepts."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hyperjoule.config._limits import Name, TimeoutS

__all__ = [
    "OFFLINE_ENV",
    "SYSTEM_KNOBS",
    "Hyperparameter",
    "MetricGoal",
    "MetricSpec",
    "StrictModel",
    "Target",
    "TargetsFile",
]

Scalar = int | float | str | bool

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
"""Environment a target with ``offline: true`` runs with (no hub downloads)."""


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SYSTEM_KNOBS = ("gpu_power_limit_w",)
"""Hyperparameters hyperjoule applies to the machine instead of passing as a flag:
``gpu_power_limit_w`` is set through NVML on the run's GPUs and restored afterwards."""


class Hyperparameter(StrictModel):
    """One hyperparameter of a target: its flag, type, default and sampling space.

    A system knob (:data:`SYSTEM_KNOBS`) has no ``flag``: hyperjoule applies it itself.
    """

    flag: str | None = Field(default=None, min_length=1)
    type: Literal["int", "float", "choice"]
    default: Scalar
    range: tuple[float, float] | None = None
    choices: list[Scalar] | None = None
    distribution: Literal["uniform", "log_uniform"] = "uniform"
    zero_probability: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_space(self) -> Hyperparameter:
        if self.type == "choice":
            if not self.choices:
                raise ValueError("type choice needs a non-empty 'choices' list")
            if self.range is not None:
                raise ValueError("type choice takes 'choices', not 'range'")
            if self.default not in self.choices:
                raise ValueError(f"default {self.default!r} is not one of choices {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"'choices' is only for type choice (this is type {self.type})")
        if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
            raise ValueError(f"default {self.default!r} is not a number (type {self.type})")
        if self.type == "int" and not float(self.default).is_integer():
            raise ValueError(f"default {self.default!r} is not an integer (type int)")
        if self.range is not None:
            low, high = self.range
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError("range bounds must be finite numbers")
            if low >= high:
                raise ValueError(
                    f"range [{low:g}, {high:g}] is reversed or empty; write [min, max]"
                )
            if self.type == "int" and not (low.is_integer() and high.is_integer()):
                raise ValueError(f"range [{low:g}, {high:g}] of an int must hold integers")
            if self.distribution == "log_uniform" and low <= 0:
                raise ValueError(
                    f"log_uniform needs a range above 0 (got [{low:g}, {high:g}]); "
                    "use zero_probability for a chance of exactly 0"
                )
        return self

    @property
    def mutable(self) -> bool:
        """True when the hyperparameter has a space to sample from."""
        return self.choices is not None or self.range is not None


MetricGoal = Literal["minimize", "maximize"]
"""Whether a lower or a higher value of a metric is better."""


class MetricSpec(StrictModel):
    """One declared metric: its goal and/or a regex fallback.

    ``regex`` (exactly one numeric capture group) reads the metric from the log when the
    target prints no structured line for it; a metric that arrives only through
    structured lines or the metrics file is declared without one (``{goal: maximize}``).
    ``goal`` says which direction is better; analyses guess it from the name (and say
    so) when it is left out.
    """

    regex: str | None = None
    match: Literal["first", "last"] = "last"
    goal: MetricGoal | None = None

    @model_validator(mode="after")
    def _check_something(self) -> MetricSpec:
        if self.regex is None and self.goal is None:
            raise ValueError(
                "declare a 'goal' (minimize or maximize) and/or a 'regex' for this metric"
            )
        return self

    @field_validator("regex")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as e:
            raise ValueError(f"invalid regular expression: {e}") from None
        if compiled.groups != 1:
            raise ValueError(f"regex needs exactly one capture group, found {compiled.groups}")
        return value


class Target(StrictModel):
    """A training target: a command, its models, fixed arguments and hyperparameters."""

    workdir: Path = Path(".")
    command: list[str] = Field(min_length=1)
    models: list[str] | None = None
    model_flag: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: TimeoutS | None = None
    assets: list[str] = Field(default_factory=list)
    offline: bool = False
    gpus: list[Annotated[int, Field(ge=0)]] | None = None
    hyperparameters: dict[str, Hyperparameter] = Field(default_factory=dict)
    metrics: dict[str, MetricSpec] = Field(default_factory=dict)
    required_metrics: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_models(self) -> Target:
        if self.models is not None:
            if not self.models:
                raise ValueError("'models' is empty; list the models or leave the key out")
            if len(set(self.models)) != len(self.models):
                raise ValueError("'models' lists a model twice")
            if not self.model_flag:
                raise ValueError("a target with 'models' needs 'model_flag' (e.g. --model)")
        for name, hp in self.hyperparameters.items():
            if name in SYSTEM_KNOBS:
                if hp.flag is not None or hp.type == "choice":
                    raise ValueError(
                        f"hyperparameter '{name}' is a system knob hyperjoule sets itself: "
                        "give it a numeric type and no 'flag'"
                    )
            elif hp.flag is None:
                raise ValueError(
                    f"hyperparameter '{name}' needs a 'flag' (e.g. --{name.replace('_', '-')}); "
                    f"only system knobs ({', '.join(SYSTEM_KNOBS)}) have none"
                )
        flags = [hp.flag for hp in self.hyperparameters.values() if hp.flag is not None]
        dupes = sorted({f for f in flags if flags.count(f) > 1})
        if dupes:
            raise ValueError(f"several hyperparameters use the flag {dupes[0]}")
        return self


class TargetsFile(StrictModel):
    """The whole ``targets.yaml``."""

    targets: dict[Name, Target] = Field(min_length=1)
