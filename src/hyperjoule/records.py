"""The run record and the planned run: the data every stage of hyperjoule passes on.

A :class:`RunSpec` is one fully resolved planned run (what to execute); a
:class:`RunRecord` is what happened when it ran (what ``run.json``, the database and
``runs --format json`` hold). Units are in every field name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, cast

from hyperjoule.carbon import CarbonEstimate

__all__ = [
    "ATTRIBUTIONS",
    "DEFAULT_RETRY_ON",
    "AttemptEntry",
    "AttemptsEnergy",
    "FAILURE_CLASSES",
    "ENERGY_COMPONENTS",
    "METHODS",
    "BackgroundPolicy",
    "BackgroundSpec",
    "EnergyBlock",
    "EnergyComponent",
    "HyperValue",
    "PowerBlock",
    "RunRecord",
    "RunSpec",
    "RunStatus",
]

HyperValue = int | float | str | bool
"""A resolved hyperparameter value, typed as its declaration says."""

ENERGY_COMPONENTS = ("gpu", "cpu_pkg", "cpu_dram")
"""Energy components of a record, in the order they are reported."""

METHODS = ("counter", "integrated", "estimated", "unavailable")
"""How a figure was obtained, from most to least trustworthy."""

ATTRIBUTIONS = ("exclusive", "combined", "apportioned")
"""``exclusive``: the devices served this run alone (or the figure is the run's own
process tree); ``combined``: the figure includes other work measured with the run
(a parallel run's background); ``apportioned``: concurrent runs shared the device and
this is the run's measured share of its energy (``share``, ``share_basis``)."""

Method = Literal["counter", "integrated", "estimated", "unavailable"]
Attribution = Literal["exclusive", "combined", "apportioned"]


class RunStatus(str, Enum):
    """Outcome class of a run (of its last attempt).

    ``pruned`` is a search trial stopped early by its pruner (its energy was spent and
    counts). ``running`` only exists while a run is in flight; a record left ``running`` by a
    killed runner is turned into ``interrupted`` on the next ``run`` of its study.
    """

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    OOM = "oom"
    METRICS_MISSING = "metrics_missing"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"
    RUNNING = "running"

    @property
    def finished(self) -> bool:
        """True when the run ended for good (resume will not run its slot again)."""
        return self not in (RunStatus.INTERRUPTED, RunStatus.RUNNING)


FAILURE_CLASSES = ("failed", "timeout", "oom", "metrics_missing")
"""Outcome classes of a finished attempt that did not succeed (what ``retry_on`` lists)."""

DEFAULT_RETRY_ON = ("oom",)
"""Failures retried unless a study says otherwise (``retry_on``).

Only running out of memory: it depends on what else holds memory at the time (another
job on the GPU, a parallel run's background, the OOM killer choosing a victim), so a
second attempt can succeed. A crash (``failed``), a missing metric and a timeout repeat
with the same configuration and code; retrying them would spend the energy twice.
"""


@dataclass(frozen=True)
class BackgroundSpec:
    """The background load of a parallel-mode run (supervised by the parallel issue)."""

    target: str
    model: str | None
    hyperparameters: dict[str, HyperValue]


@dataclass(frozen=True)
class BackgroundPolicy:
    """How a parallel run's background is warmed up and judged.

    Attributes:
        warmup_min_s: The foreground never starts earlier than this after the background.
        warmup_max_s: It starts at the latest after this, loaded or not.
        load_threshold_pct: Background load that counts as "loaded": GPU utilisation of
            the run's GPUs when they can be read, else CPU use of the background's
            processes in percent of one core.
        min_background_run_s: Background runs shorter than this do not load anything.
        require_effective_background: A run whose background was not effective fails.
    """

    warmup_min_s: float = 2.0
    warmup_max_s: float = 60.0
    load_threshold_pct: float = 50.0
    min_background_run_s: float = 5.0
    require_effective_background: bool = False


@dataclass(frozen=True)
class RunSpec:
    """One planned run, fully resolved.

    Attributes:
        slot_id: Stable identity of this run within its study's plan
            (``e<experiment>-<n>``); resume runs each unfinished slot once.
        study: Study name.
        experiment: Index of the experiment in the study file (0-based).
        target: Target name (``repository`` in ``summary.csv``).
        model: Model name, or None when the target declares no models.
        mode: ``default``, ``mutation``, ``parallel`` or ``search``.
        hyperparameters: Every declared hyperparameter with its resolved, typed value.
        mutated: Names of the hyperparameters that differ from the defaults on purpose.
        dedup_key: Canonical key of (target, model, mode, hyperparameters).
        max_retries: Extra attempts after a failed one.
        retry_on: Outcome classes that are retried (see :data:`DEFAULT_RETRY_ON`).
        cooldown_s: Pause after the run, in seconds.
        background: The background load (parallel mode only).
        gpus: NVML indices of the GPUs the run is given (and measured on); None: those
            of ``CUDA_VISIBLE_DEVICES``, or all.
        idle_cooldown_max_s: With ``idle_cooldown_within_c``, cool down after the run
            until the GPUs are this close (degrees C) to idle, at most this long.
        idle_cooldown_within_c: See ``idle_cooldown_max_s``.
        search: Search mode only: the trial's context (experiment, trial number,
            sampler, objectives, constraints, pruning), copied into the record.
    """

    slot_id: str
    study: str
    experiment: int
    target: str
    model: str | None
    mode: Literal["default", "mutation", "parallel", "search"]
    hyperparameters: dict[str, HyperValue]
    mutated: tuple[str, ...]
    dedup_key: str
    max_retries: int = 0
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
    cooldown_s: float = 0.0
    background: tuple[BackgroundSpec, ...] = ()
    background_policy: BackgroundPolicy | None = None
    gpus: tuple[int, ...] | None = None
    idle_cooldown_max_s: float | None = None
    idle_cooldown_within_c: float | None = None
    search: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["mutated"] = list(self.mutated)
        data["retry_on"] = list(self.retry_on)
        data["background"] = [dataclasses.asdict(b) for b in self.background]
        if self.background_policy is not None:
            data["background_policy"] = dataclasses.asdict(self.background_policy)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Rebuild a spec written by :meth:`to_dict`."""
        values = dict(data)
        values["mutated"] = tuple(values.get("mutated", ()))
        values["retry_on"] = tuple(values.get("retry_on", DEFAULT_RETRY_ON))
        values["background"] = tuple(BackgroundSpec(**b) for b in values.get("background", ()))
        if values.get("background_policy") is not None:
            values["background_policy"] = BackgroundPolicy(**values["background_policy"])
        if values.get("gpus") is not None:
            values["gpus"] = tuple(values["gpus"])
        return cls(**values)


@dataclass
class EnergyComponent:
    """Energy of one component (GPU, CPU package, DRAM) over a run.

    ``energy_j`` is None exactly when ``method`` is ``unavailable``; ``reason`` then says
    why (and, for estimates, how the figure was made). Never a silent zero.

    ``energy_j`` is gross energy. With an idle baseline of the same devices,
    ``idle_power_w`` is their idle power and ``net_energy_j`` the dynamic energy
    (gross minus idle power x duration; negative means below idle, i.e. a stale or noisy
    baseline, and is not clamped); ``net_reason`` says why there is no net figure.

    When concurrent runs shared the device (``attribution`` ``apportioned``),
    ``energy_j`` is this run's ``share`` (0..1) of ``device_energy_j``, the energy the
    device used over the run's window, split by ``share_basis`` (``cpu_time``: CPU time
    of each run's process groups); the shares of concurrent runs add up to the device's
    energy, so summing runs counts every device once.
    """

    energy_j: float | None
    method: Method
    devices: list[str] = field(default_factory=list)
    attribution: Attribution = "exclusive"
    reason: str | None = None
    sampling_period_s: float | None = None
    wraps: int = 0
    idle_power_w: float | None = None
    net_energy_j: float | None = None
    net_reason: str | None = None
    share: float | None = None
    share_basis: str | None = None
    device_energy_j: float | None = None

    @classmethod
    def unavailable(cls, reason: str) -> EnergyComponent:
        """A component that could not be measured, with the reason."""
        return cls(energy_j=None, method="unavailable", reason=reason)


@dataclass
class EnergyBlock:
    """The ``energy`` block of a run record: one entry per component plus the total.

    ``partial`` is True when the figures stop short of the run's end: its runner was
    killed and they are those of the last checkpoint (methods kept).
    """

    components: dict[str, EnergyComponent] = field(default_factory=dict)
    partial: bool = False

    def get(self, name: str) -> EnergyComponent:
        """Return a component, ``unavailable`` when no meter reported it."""
        comp = self.components.get(name)
        if comp is None:
            return EnergyComponent.unavailable("no meter measured this component")
        return comp

    @property
    def total_j(self) -> float | None:
        """Sum of the available components; None when none is available."""
        values = [c.energy_j for c in self.components.values() if c.energy_j is not None]
        return float(sum(values)) if values else None

    @property
    def total_method(self) -> Method:
        """The weakest method among the components in the total."""
        used = [c.method for c in self.components.values() if c.energy_j is not None]
        if not used:
            return "unavailable"
        return max(used, key=METHODS.index)

    def to_dict(self) -> dict[str, Any]:
        """Return the record's ``energy`` block (flat ``*_j`` figures plus details)."""
        out: dict[str, Any] = {}
        for name in ENERGY_COMPONENTS:
            out[f"{name}_j"] = self.get(name).energy_j
        out["total_j"] = self.total_j
        nets = [
            self.get(n).net_energy_j for n in ENERGY_COMPONENTS if self.get(n).energy_j is not None
        ]
        # Net total only when every component in the gross total has a net figure.
        out["net_total_j"] = (
            float(sum(v for v in nets if v is not None)) if nets and None not in nets else None
        )
        out["total_method"] = self.total_method
        out["total_components"] = [n for n in ENERGY_COMPONENTS if self.get(n).energy_j is not None]
        out["components"] = {n: dataclasses.asdict(self.get(n)) for n in ENERGY_COMPONENTS}
        out["partial"] = self.partial
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyBlock:
        """Rebuild a block written by :meth:`to_dict`."""
        comps = {n: EnergyComponent(**c) for n, c in data.get("components", {}).items()}
        return cls(components=comps, partial=bool(data.get("partial", False)))


@dataclass
class PowerBlock:
    """GPU power, temperature and utilisation summary over a run (None: not measured).

    ``samples`` is None when the number of samples is not known (imported runs).
    """

    gpu_avg_w: float | None = None
    gpu_max_w: float | None = None
    gpu_min_w: float | None = None
    gpu_temp_avg_c: float | None = None
    gpu_temp_max_c: float | None = None
    gpu_util_avg_pct: float | None = None
    gpu_util_max_pct: float | None = None
    samples: int | None = 0
    sampling_period_s: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class AttemptEntry:
    """One attempt of a run as its record keeps it: an entry of ``attempt_log``.

    Written by the recorder (from an attempt's result), by checkpoints of a killed
    runner and by the legacy importer; read through :attr:`RunRecord.attempt_entries`.
    The JSON form is :meth:`to_dict`; entries of older records are read leniently.

    Attributes:
        attempt: Attempt number, from 1.
        status: Outcome class of the attempt (a :class:`RunStatus` value).
        reason: Why it did not succeed, or None.
        exit_code: Exit status (None when a signal ended it or it never ran).
        signal: Signal that ended it, or None.
        started_at: UTC timestamp of its start, when recorded.
        duration_s: Wall time, in seconds.
        cpu_time_s: CPU time of its process tree, in seconds.
        max_rss_bytes: Peak resident set size, in bytes.
        energy_total_j: Its total energy, in joules (None: not measured).
        energy_method: The weakest method in that total.
        log: Its log file, relative to the run directory.
        partial: Figures up to a checkpoint only (the runner died during it).
        details: Everything else kept about it (metric sources and problems, energy
            files, executor, escaped processes, background verdict, import notes).
    """

    attempt: int
    status: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    started_at: str | None = None
    duration_s: float | None = None
    cpu_time_s: float | None = None
    max_rss_bytes: int | None = None
    energy_total_j: float | None = None
    energy_method: str = "unavailable"
    log: str | None = None
    partial: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    _ALWAYS = (
        "attempt",
        "status",
        "reason",
        "exit_code",
        "signal",
        "duration_s",
        "cpu_time_s",
        "energy_total_j",
        "energy_method",
    )
    _WHEN_SET = ("started_at", "max_rss_bytes", "log")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (an ``attempt_log`` entry)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self._ALWAYS}
        out.update({n: getattr(self, n) for n in self._WHEN_SET if getattr(self, n) is not None})
        if self.partial:
            out["partial"] = True
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptEntry:
        """Read an entry leniently (older records, imports): odd values become None."""
        known = {f.name for f in dataclasses.fields(cls)} - {"details"}

        def number(name: str) -> float | None:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value)

        def integer(name: str) -> int | None:
            value = number(name)
            return int(value) if value is not None and value.is_integer() else None

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        return cls(
            attempt=integer("attempt") or 0,
            status=text("status") or "unknown",
            reason=text("reason"),
            exit_code=integer("exit_code"),
            signal=integer("signal"),
            started_at=text("started_at"),
            duration_s=number("duration_s"),
            cpu_time_s=number("cpu_time_s"),
            max_rss_bytes=integer("max_rss_bytes"),
            energy_total_j=number("energy_total_j"),
            energy_method=text("energy_method") or "unavailable",
            log=text("log"),
            partial=data.get("partial") is True,
            details={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class AttemptsEnergy:
    """What every attempt of a run cost together (retries and failures included).

    Attributes:
        total_j: Sum of the attempts that have an energy figure; None when none has.
        method: The weakest method among those attempts (``unavailable`` when none).
        unmeasured: Attempts without a figure (not in ``total_j``), including attempts
            the record counts but whose log entry is missing (imported records).
    """

    total_j: float | None
    method: Method
    unmeasured: int

    @classmethod
    def of(cls, attempts: int, entries: Sequence[AttemptEntry]) -> AttemptsEnergy:
        """Add up a record's attempts (:attr:`RunRecord.attempt_entries`)."""
        measured = [a.energy_total_j for a in entries if a.energy_total_j is not None]
        # An unknown method label ranks as the weakest: never promote a figure.
        ranks = [
            METHODS.index(a.energy_method) if a.energy_method in METHODS else len(METHODS) - 1
            for a in entries
            if a.energy_total_j is not None
        ]
        method = cast(Method, METHODS[max(ranks)] if ranks else "unavailable")
        unmeasured = len(entries) - len(measured) + max(attempts - len(entries), 0)
        total = float(sum(measured)) if measured else None
        return cls(total, method, unmeasured)


@dataclass
class RunRecord:
    """Everything known about one run; the shape of ``run.json`` and of the database."""

    run_id: str
    study: str
    session: str
    slot_id: str
    target: str
    model: str | None
    mode: str
    hyperparameters: dict[str, HyperValue]
    mutated: list[str]
    dedup_key: str
    status: RunStatus
    attempts: int = 0
    exit_code: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    cpu_time_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metric_goals: dict[str, str] = field(default_factory=dict)
    energy: EnergyBlock = field(default_factory=EnergyBlock)
    power: PowerBlock = field(default_factory=PowerBlock)
    background: dict[str, Any] | None = None
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    run_dir: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    rerun_of: str | None = None  # run id of the finished record this ``--rerun`` replaces
    search: dict[str, Any] | None = None
    """Search trials: sampler, objectives and their values, constraint verdict,
    intermediate metrics (``{"intermediate": [{"epoch": 1, "val_accuracy": 0.8}, ...]}``)."""
    escaped_processes: list[dict[str, Any]] = field(default_factory=list)
    carbon: CarbonEstimate | None = None
    """Estimated CO₂e of the run with its inputs (``carbon`` in study.yaml); None: not asked."""

    @property
    def attempts_energy(self) -> AttemptsEnergy:
        """The energy of every attempt together (``energy.attempts_total_j``)."""
        return AttemptsEnergy.of(self.attempts, self.attempt_entries)

    @property
    def attempt_entries(self) -> list[AttemptEntry]:
        """``attempt_log`` read as typed entries."""
        return [AttemptEntry.from_dict(a) for a in self.attempt_log if isinstance(a, dict)]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``run.json``)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["status"] = self.status.value
        data["energy"] = self.energy.to_dict()
        spent = self.attempts_energy
        data["energy"]["attempts_total_j"] = spent.total_j
        data["energy"]["attempts_total_method"] = spent.method
        data["energy"]["attempts_unmeasured"] = spent.unmeasured
        data["power"] = self.power.to_dict()
        data["carbon"] = self.carbon.to_dict() if self.carbon is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record written by :meth:`to_dict`."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["status"] = RunStatus(values["status"])
        values["energy"] = EnergyBlock.from_dict(data.get("energy") or {})
        values["power"] = PowerBlock(**(data.get("power") or {}))
        carbon = data.get("carbon")
        values["carbon"] = CarbonEstimate.from_dict(carbon) if isinstance(carbon, dict) else None
        return cls(**values)
