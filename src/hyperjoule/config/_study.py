"""Schema of ``study.yaml``: which experiments to run on which targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from hyperjoule.config._limits import PauseS, PositivePauseS, Runs
from hyperjoule.config._targets import Scalar, StrictModel
from hyperjoule.records import DEFAULT_RETRY_ON

__all__ = [
    "BackgroundConfig",
    "DefaultExperiment",
    "Defaults",
    "Experiment",
    "ExecutorConfig",
    "ForegroundConfig",
    "IdleCooldown",
    "MutationExperiment",
    "ParallelExperiment",
    "StudyFile",
    "SystemSettings",
]

Mutate = Literal["all"] | list[str]


GpuList = list[Annotated[int, Field(ge=0)]]

RetryClass = Literal["failed", "timeout", "oom", "metrics_missing"]
RetryOn = list[RetryClass]
"""Outcome classes to retry; the default and why are in ``hyperjoule.records``."""


class IdleCooldown(StrictModel):
    """Cool down until the GPUs are back near their idle temperature, at most ``max_s``.

    The idle temperature comes from the study's baseline (``baseline_s``) or the latest
    ``hyperjoule baseline``; without GPU temperatures the pause lasts ``max_s``.
    """

    max_s: PositivePauseS
    until_gpu_temp_within_c: float = Field(gt=0)


class Defaults(StrictModel):
    """Values every experiment inherits unless it sets its own."""

    runs: Runs = 1
    max_retries: int = Field(default=0, ge=0)
    retry_on: RetryOn = Field(default_factory=lambda: cast(RetryOn, list(DEFAULT_RETRY_ON)))
    cooldown_s: PauseS = 0.0
    cooldown: IdleCooldown | None = None
    gpus: GpuList | None = None


class _ExperimentBase(StrictModel):
    target: str
    model: str | None = None
    runs: Runs | None = None
    max_retries: int | None = Field(default=None, ge=0)
    retry_on: RetryOn | None = None
    cooldown_s: PauseS | None = None
    cooldown: IdleCooldown | None = None
    gpus: GpuList | None = None
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)


class DefaultExperiment(_ExperimentBase):
    """Run the (given or default) hyperparameters ``runs`` times."""

    mode: Literal["default"] = "default"


class MutationExperiment(_ExperimentBase):
    """Run ``runs`` distinct mutated configurations of the named hyperparameters."""

    mode: Literal["mutation"]
    mutate: Mutate = "all"
    strategy: Literal["joint", "one_at_a_time"] = "joint"

    @field_validator("mutate")
    @classmethod
    def _non_empty(cls, value: Mutate) -> Mutate:
        if isinstance(value, list) and not value:
            raise ValueError("'mutate' is empty; name hyperparameters or write 'all'")
        return value


class ForegroundConfig(StrictModel):
    """The measured run of a parallel experiment (mutated when ``mutate`` is given)."""

    target: str
    model: str | None = None
    runs: Runs | None = None
    mutate: Mutate | None = None
    strategy: Literal["joint", "one_at_a_time"] = "joint"
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)


class BackgroundConfig(StrictModel):
    """The training job that loops as a load while the foreground is measured."""

    target: str
    model: str | None = None
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)


class ParallelExperiment(StrictModel):
    """A measured foreground run while a supervised background job loads the machine."""

    mode: Literal["parallel"]
    foreground: ForegroundConfig
    background: BackgroundConfig | list[BackgroundConfig]
    warmup_min_s: PauseS = 2.0
    warmup_max_s: PositivePauseS = 60.0
    load_threshold_pct: float = Field(default=50.0, gt=0, le=100)
    min_background_run_s: PauseS = 5.0
    require_effective_background: bool = False
    max_retries: int | None = Field(default=None, ge=0)
    retry_on: RetryOn | None = None
    cooldown_s: PauseS | None = None
    cooldown: IdleCooldown | None = None
    gpus: GpuList | None = None

    @field_validator("background")
    @classmethod
    def _non_empty(
        cls, value: BackgroundConfig | list[BackgroundConfig]
    ) -> BackgroundConfig | list[BackgroundConfig]:
        if isinstance(value, list) and not value:
            raise ValueError("'background' is empty; give the target that loads the machine")
        return value

    @property
    def backgrounds(self) -> list[BackgroundConfig]:
        """The background jobs as a list."""
        return self.background if isinstance(self.background, list) else [self.background]


def _mode_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("mode", "default"))
    return str(getattr(value, "mode", "default"))


Experiment = Annotated[
    Annotated[DefaultExperiment, Tag("default")]
    | Annotated[MutationExperiment, Tag("mutation")]
    | Annotated[ParallelExperiment, Tag("parallel")],
    Discriminator(
        _mode_of,
        custom_error_type="invalid_mode",
        custom_error_message="mode must be one of default, mutation, parallel",
    ),
]


class SystemSettings(StrictModel):
    """Machine settings applied for the study's duration and restored afterwards.

    Attributes:
        cpu_governor: CPU frequency governor for every CPU (the lab ran ``performance``).
        continue_without_permission: Run anyway (recording that the setting was not
            applied) when the governor cannot be changed; by default the study stops.
    """

    cpu_governor: str | None = None
    continue_without_permission: bool = False


class ExecutorConfig(StrictModel):
    """Where and how many runs execute at once (``executor:`` in the study).

    Attributes:
        kind: ``local`` (this machine) or ``ray`` (a Ray cluster).
        jobs: Runs at once (local); default GPUs ÷ ``gpus_per_run``, 1 without GPUs.
            ``--jobs`` on the command line wins.
        gpus_per_run: Whole GPUs each run gets for itself (``CUDA_VISIBLE_DEVICES``);
            0: runs get no GPUs of their own (they see the inherited ones).
        address: Ray cluster address (``auto``, ``ray://host:10001``); ray only.
    """

    kind: Literal["local", "ray"] = "local"
    jobs: int | None = Field(default=None, ge=1)
    gpus_per_run: int = Field(default=0, ge=0)
    address: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> ExecutorConfig:
        if self.address is not None and self.kind != "ray":
            raise ValueError("'address' is for kind: ray; remove it or set kind: ray")
        return self


class StudyFile(StrictModel):
    """The whole ``study.yaml``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    targets: Path | dict[str, Any]
    seed: int = 0
    defaults: Defaults = Field(default_factory=Defaults)
    system: SystemSettings = Field(default_factory=SystemSettings)
    allow_estimates: bool = False
    baseline_s: PauseS = 0.0
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    experiments: list[Experiment] = Field(min_length=1)
