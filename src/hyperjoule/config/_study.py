"""Schema of ``study.yaml``: which experiments to run on which targets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from hyperjoule.carbon import TABLE_SOURCE, CarbonEstimate, estimate_carbon, lookup_region
from hyperjoule.config._limits import MAX_RETRIES, PauseS, PositivePauseS, Runs
from hyperjoule.config._targets import Scalar, StrictModel
from hyperjoule.records import DEFAULT_RETRY_ON

__all__ = [
    "BackgroundConfig",
    "CarbonConfig",
    "DefaultExperiment",
    "Defaults",
    "Experiment",
    "ExecutorConfig",
    "ForegroundConfig",
    "IdleCooldown",
    "MutationExperiment",
    "ParallelExperiment",
    "PruneConfig",
    "SearchExperiment",
    "StudyFile",
    "parse_constraint",
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
    until_gpu_temp_within_c: float = Field(gt=0, allow_inf_nan=False)


class Defaults(StrictModel):
    """Values every experiment inherits unless it sets its own."""

    runs: Runs = 1
    max_retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    retry_on: RetryOn = Field(default_factory=lambda: cast(RetryOn, list(DEFAULT_RETRY_ON)))
    cooldown_s: PauseS = 0.0
    cooldown: IdleCooldown | None = None
    gpus: GpuList | None = None


class _ExperimentBase(StrictModel):
    target: str
    model: str | None = None
    runs: Runs | None = None
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
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
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
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


SEARCH_FIGURES = ("energy_j", "gpu_energy_j", "cpu_energy_j", "net_energy_j", "duration_s")
"""Measured figures a search can optimise or constrain besides the target's metrics."""

SAMPLERS = ("tpe", "nsga2", "gp", "random")

Direction = Literal["minimize", "maximize"]


class PruneConfig(StrictModel):
    """Stop runs early that cannot reach the front, from their intermediate metrics.

    Attributes:
        metric: Intermediate metric the target prints each epoch
            (``HYPERJOULE_METRICS {"epoch": 3, "val_accuracy": 0.91}``).
        pruner: ``median`` (below the median of earlier trials at the same epoch) or
            ``hyperband``.
        min_epochs: Never stop a run before it reported this many epochs.
        step: Key of the epoch counter in the intermediate lines.
        goal: Whether a higher ``metric`` is better; by default the direction of the
            objective with the same name, else that of the metric's name.
    """

    metric: str = Field(min_length=1)
    pruner: Literal["median", "hyperband"] = "median"
    min_epochs: int = Field(default=1, ge=0)
    step: str = Field(default="epoch", min_length=1)
    goal: Direction | None = None


_CONSTRAINT = r"^\s*(<=|>=|<|>)\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


class SearchExperiment(_ExperimentBase):
    """Energy-aware search (Optuna, ask-and-tell): ``trials`` runs proposed as results arrive.

    Attributes:
        search: Hyperparameters to search (``all``: every one with a range or choices).
        objectives: Figures to optimise: a list (directions from the metrics' declared
            goals; energy and time are minimised) or a mapping to ``minimize|maximize``.
        constraints: ``{metric: ">= 0.95"}``: trials that miss one are infeasible.
        trials: Number of finished runs the search ends with.
        sampler: ``tpe``, ``nsga2``, ``gp`` or ``random``.
        warm_start: Seed the search with finished runs of the same target and model
            already in the database (they do not count as trials).
        prune: Stop unpromising runs early from their intermediate metrics.
    """

    mode: Literal["search"]
    search: Mutate = "all"
    objectives: list[str] | dict[str, Direction | None] = Field(min_length=1)
    constraints: dict[str, str] = Field(default_factory=dict)
    trials: int = Field(ge=1)
    sampler: Literal["tpe", "nsga2", "gp", "random"] = "tpe"
    warm_start: bool = False
    prune: PruneConfig | None = None

    @field_validator("search")
    @classmethod
    def _non_empty(cls, value: Mutate) -> Mutate:
        if isinstance(value, list) and not value:
            raise ValueError("'search' is empty; name hyperparameters or write 'all'")
        return value

    @field_validator("runs")
    @classmethod
    def _no_runs(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError("a search runs 'trials' configurations once each; remove 'runs'")
        return value

    @field_validator("objectives")
    @classmethod
    def _distinct(
        cls, value: list[str] | dict[str, Direction | None]
    ) -> list[str] | dict[str, Direction | None]:
        names = list(value)
        if len(set(names)) != len(names):
            raise ValueError("an objective is listed twice")
        return value

    @field_validator("constraints")
    @classmethod
    def _constraint_syntax(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.match(_CONSTRAINT, str(text)):
                raise ValueError(
                    f"constraint {name}: {text!r} is not a comparison; write e.g. '>= 0.95'"
                )
        return value

    def parsed_constraints(self) -> dict[str, tuple[str, float]]:
        """Constraints as ``{name: (operator, bound)}``."""
        return {name: parse_constraint(text) for name, text in self.constraints.items()}


def parse_constraint(text: str) -> tuple[str, float]:
    """``">= 0.95"`` as ``(">=", 0.95)``.

    Raises:
        ValueError: ``text`` is not a comparison with a number.
    """
    match = re.match(_CONSTRAINT, str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a comparison; write e.g. '>= 0.95'")
    op = match.group(1)
    return op, float(str(text).strip()[len(op) :])


def _mode_of(value: Any) -> str:
    # Tags never equal a field name ("search" is both a mode and a key), so error
    # locations can tell the union's member from the user's keys.
    if isinstance(value, dict):
        return "mode=" + str(value.get("mode", "default"))
    return "mode=" + str(getattr(value, "mode", "default"))


Experiment = Annotated[
    Annotated[DefaultExperiment, Tag("mode=default")]
    | Annotated[MutationExperiment, Tag("mode=mutation")]
    | Annotated[ParallelExperiment, Tag("mode=parallel")]
    | Annotated[SearchExperiment, Tag("mode=search")],
    Discriminator(
        _mode_of,
        custom_error_type="invalid_mode",
        custom_error_message="mode must be one of default, mutation, parallel, search",
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
            With ray: at most this many in flight (default: what the cluster's nodes
            fit). ``--jobs`` on the command line wins.
        gpus_per_run: Whole GPUs each run gets for itself (``CUDA_VISIBLE_DEVICES``);
            0: runs get no GPUs of their own (they see the inherited ones).
        address: Ray cluster address (``auto``, ``HOST:PORT``); ray only. Unset: a
            private Ray instance is started on this machine.
        cpus_per_run: CPUs each run asks Ray for (default 1); ray only.
        resources: Custom Ray resources each run asks for (``{node_a: 1}``); ray only.
        shared_results_dir: ``true``: every node sees the results directory at the same
            path and writes in place; ``false``: files always travel back to this
            machine; unset: each node checks. Ray only.
    """

    kind: Literal["local", "ray"] = "local"
    jobs: int | None = Field(default=None, ge=1)
    gpus_per_run: int = Field(default=0, ge=0)
    address: str | None = None
    cpus_per_run: float | None = Field(default=None, gt=0)
    resources: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    shared_results_dir: bool | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> ExecutorConfig:
        if self.kind != "ray":
            for name in ("address", "cpus_per_run", "shared_results_dir"):
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' is for kind: ray; remove it or set kind: ray")
            if self.resources:
                raise ValueError("'resources' is for kind: ray; remove it or set kind: ray")
        return self


class CarbonConfig(StrictModel):
    """How runs' energy becomes an estimated CO₂e (``carbon`` in study.yaml).

    Attributes:
        intensity_g_per_kwh: Grid carbon intensity, grams CO₂e per kWh (your provider's
            or grid operator's figure).
        region: ISO 3166-1 alpha-3 code of a country in the bundled table of annual
            averages (``DEU``); instead of ``intensity_g_per_kwh``.
        pue: Power usage effectiveness of the site (data-centre overhead; 1.0 counts the
            measured energy only).
    """

    intensity_g_per_kwh: float | None = Field(default=None, gt=0, le=5000, allow_inf_nan=False)
    region: str | None = None
    pue: float = Field(default=1.0, ge=1.0, le=5.0, allow_inf_nan=False)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return lookup_region(value).iso3
        except KeyError as e:
            raise ValueError(e.args[0]) from None

    @model_validator(mode="after")
    def _one_source(self) -> CarbonConfig:
        if (self.intensity_g_per_kwh is None) == (self.region is None):
            raise ValueError(
                "give either intensity_g_per_kwh (grams CO2e per kWh) or region "
                "(an ISO3 country code, e.g. DEU), not both and not neither"
            )
        return self

    def estimate(
        self,
        energy_j: float | None,
        attempts_energy_j: float | None,
        energy_reason: str | None = None,
    ) -> CarbonEstimate:
        """The estimate for a run's energy (None: unavailable, and so is its CO₂e)."""
        if self.region is not None:
            grid = lookup_region(self.region)
            return estimate_carbon(
                energy_j,
                attempts_energy_j,
                intensity_g_per_kwh=grid.intensity_g_per_kwh,
                pue=self.pue,
                source=f"{grid.country} ({grid.iso3}) {grid.year} annual average: {TABLE_SOURCE}",
                region=grid.iso3,
                year=grid.year,
                energy_reason=energy_reason,
            )
        assert self.intensity_g_per_kwh is not None  # _one_source
        return estimate_carbon(
            energy_j,
            attempts_energy_j,
            intensity_g_per_kwh=self.intensity_g_per_kwh,
            pue=self.pue,
            source="study file: carbon.intensity_g_per_kwh",
            energy_reason=energy_reason,
        )


class StudyFile(StrictModel):
    """The whole ``study.yaml``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    targets: Path | dict[str, Any]
    seed: int = 0
    defaults: Defaults = Field(default_factory=Defaults)
    system: SystemSettings = Field(default_factory=SystemSettings)
    allow_estimates: bool = False
    # Power of one fully busy core for the CPU estimate (without RAPL); TDP / cores is close.
    cpu_watts_per_core: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    baseline_s: PauseS = 0.0
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    carbon: CarbonConfig | None = None
    experiments: list[Experiment] = Field(min_length=1)
