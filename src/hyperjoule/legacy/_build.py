"""Building the record of one imported run from its merged old descriptions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hyperjoule.errors import ConfigError
from hyperjoule.execution._outcome import OOM_PATTERNS
from hyperjoule.legacy._identity import MergedRun
from hyperjoule.legacy._registry import DEFAULT_MODEL
from hyperjoule.legacy._results import POWER_KEYS, LegacyRun
from hyperjoule.legacy._typing import ValueTyper
from hyperjoule.records import (
    AttemptEntry,
    EnergyBlock,
    EnergyComponent,
    HyperValue,
    PowerBlock,
    RunRecord,
    RunStatus,
)

__all__ = [
    "LEGACY_CPU_METHOD",
    "LEGACY_GPU_METHOD",
    "LEGACY_GPU_PERIOD_S",
    "LEGACY_REASON",
    "build_record",
]

LEGACY_REASON = "not recorded by the legacy tool"
"""Reason given for every figure the old files do not hold."""

LEGACY_GPU_PERIOD_S = 1.0
"""The old tool polled nvidia-smi once a second and summed the samples as joules."""

LEGACY_GPU_METHOD = "nvidia-smi power summed once a second (legacy)"
"""How the old tool obtained GPU energy (the note of imported GPU figures)."""

LEGACY_CPU_METHOD = "perf stat RAPL counters (legacy)"
"""How the old tool obtained CPU package and DRAM energy."""


def _status(run: LegacyRun) -> tuple[RunStatus, str | None]:
    if run.success is None:
        return RunStatus.FAILED, "training_success " + LEGACY_REASON
    if run.success:
        return RunStatus.SUCCEEDED, None
    error = run.error or "the legacy tool recorded a failure"
    data = error.encode("utf-8", "replace")
    if any(p.search(data) for p in OOM_PATTERNS):
        return RunStatus.OOM, error
    return RunStatus.FAILED, error


def _mode(
    run: LegacyRun, typed: Mapping[str, HyperValue], defaults: Mapping[str, HyperValue] | None
) -> str:
    if run.mode in ("default", "mutation", "parallel"):
        return run.mode
    if run.nested or run.background is not None or run.experiment_id.endswith("_parallel"):
        return "parallel"
    if defaults is not None:
        changed = any(typed.get(n) != v for n, v in defaults.items())
        return "mutation" if changed else "default"
    # The old tool stored only the hyperparameters it mutated.
    return "mutation" if run.hyperparameters else "default"


def _component(value: float | None, method: str, attribution: str) -> EnergyComponent:
    if value is None:
        return EnergyComponent.unavailable(LEGACY_REASON)
    if method == "integrated":
        return EnergyComponent(
            energy_j=value,
            method="integrated",
            attribution="combined" if attribution == "combined" else "exclusive",
            reason=LEGACY_GPU_METHOD,
            sampling_period_s=LEGACY_GPU_PERIOD_S,
        )
    return EnergyComponent(
        energy_j=value,
        method="counter",
        attribution="combined" if attribution == "combined" else "exclusive",
        reason=LEGACY_CPU_METHOD,
    )


def _energy(run: LegacyRun, mode: str) -> tuple[EnergyBlock, PowerBlock]:
    # Parallel energy covered the foreground and the background together.
    attribution = run.attribution if run.attribution in ("combined", "exclusive") else None
    attribution = attribution or ("combined" if mode == "parallel" else "exclusive")
    energy = EnergyBlock(
        {
            "gpu": _component(run.energy.get("gpu_j"), "integrated", attribution),
            "cpu_pkg": _component(run.energy.get("cpu_pkg_j"), "counter", attribution),
            "cpu_dram": _component(run.energy.get("cpu_dram_j"), "counter", attribution),
        }
    )
    figures = {key: run.energy.get(key) for key in POWER_KEYS}
    measured = any(v is not None for v in figures.values())
    power = PowerBlock(
        gpu_avg_w=figures["gpu_avg_w"],
        gpu_max_w=figures["gpu_max_w"],
        gpu_min_w=figures["gpu_min_w"],
        gpu_temp_avg_c=figures["gpu_temp_avg_c"],
        gpu_temp_max_c=figures["gpu_temp_max_c"],
        gpu_util_avg_pct=figures["gpu_util_avg_pct"],
        gpu_util_max_pct=figures["gpu_util_max_pct"],
        samples=None,  # the old tool did not record how many samples it took
        sampling_period_s=LEGACY_GPU_PERIOD_S if measured else None,
        reason=None if measured else LEGACY_REASON,
    )
    return energy, power


def _session(run: LegacyRun) -> str:
    if run.session and run.session not in (".", ".."):
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", run.session)
    return "legacy"


def build_record(
    merged: MergedRun,
    run_id: str,
    study: str,
    values: ValueTyper,
    targets_path: Path | None,
    zone: str,
) -> RunRecord:
    """The record of one merged run.

    Raises:
        ConfigError: The run names no repository, or a value does not fit its type.
    """
    run = merged.run
    primary = run.sources[0]
    if run.repository is None:
        raise ConfigError(primary, f"{run.experiment_id}.repository", "the run names no repository")
    target = run.repository
    model = None if run.model in (None, DEFAULT_MODEL) else run.model
    declared = values.declared(target)
    typed, filled = values.hyperparameters(target, run.hyperparameters, primary, run.experiment_id)
    defaults = None if declared is None else {n: values.default(target, n) for n in declared}
    mode = _mode(run, typed, defaults)
    if defaults is not None:
        mutated = [n for n in typed if n in defaults and typed[n] != defaults[n]]
    else:
        mutated = list(typed) if mode != "default" else []
    status, error = _status(run)
    energy, power = _energy(run, mode)
    background = None
    if run.background is not None:
        bg_target = run.background.get("repository") or "unknown"
        bg_typed, _ = values.hyperparameters(
            bg_target, run.background["hyperparameters"], primary, f"{run.experiment_id}.background"
        )
        bg_model = run.background.get("model")
        background = {
            "target": bg_target,
            "model": None if bg_model in (None, DEFAULT_MODEL) else bg_model,
            "hyperparameters": bg_typed,
            "runs": None,
            "effective": None,
            "reasons": [f"background runs and load {LEGACY_REASON}"],
        }
    started = merged.utc.isoformat() if merged.utc is not None else run.timestamp
    provenance: dict[str, Any] = {
        "imported_from": str(primary),
        "also_in": [str(p) for p in run.sources[1:]],
        "legacy_id": f"{run.experiment_id}@{run.timestamp}",
        "legacy_experiment_id": run.experiment_id,
        "legacy_aliases": merged.aliases,
        "legacy_timestamp": run.timestamp_text or run.timestamp,
        "legacy_timezone": zone if merged.utc is not None else "not a timestamp; kept as written",
        "legacy_session": run.session,
        "legacy_model": run.model,
        "hyperparameter_types": f"declared in {targets_path}"
        if declared is not None
        else "inferred",
        "defaults_filled": filled,
        "measurement": {"gpu": LEGACY_GPU_METHOD, "cpu": LEGACY_CPU_METHOD},
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "legacy_descriptions": [d.to_dict() for d in merged.descriptions],
    }
    attempts = (run.retries or 0) + 1
    # The old files hold the final attempt only: that is all the study cost can count.
    attempt_log = [
        AttemptEntry(
            attempt=attempts,
            status=status.value,
            reason=error,
            duration_s=run.duration_s,
            energy_total_j=energy.total_j,
            energy_method=energy.total_method,
            details={"note": "the final attempt; earlier attempts " + LEGACY_REASON},
        ).to_dict()
    ]
    return RunRecord(
        run_id=run_id,
        study=study,
        session=_session(run),
        slot_id=run.experiment_id,
        target=target,
        model=model,
        mode=mode,
        hyperparameters=typed,
        mutated=mutated,
        dedup_key=values.key(target, model, mode, typed),
        status=status,
        attempts=attempts,
        attempt_log=attempt_log,
        started_at=started,
        duration_s=run.duration_s,
        metrics=dict(run.metrics),
        energy=energy,
        power=power,
        background=background,
        run_dir=None if run.run_dir is None else str(run.run_dir),
        provenance=provenance,
        error=error,
    )
