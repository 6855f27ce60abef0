"""Synthetic run records with known answers, stored in a real results database."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hyperjoule.records import EnergyBlock, EnergyComponent, PowerBlock, RunRecord, RunStatus
from hyperjoule.storage import ResultsStore


def energy_block(
    gpu_j: float | None,
    pkg_j: float | None = None,
    dram_j: float | None = None,
    *,
    method: str = "counter",
    attribution: str = "exclusive",
) -> EnergyBlock:
    def comp(value: float | None, device: str) -> EnergyComponent:
        if value is None:
            return EnergyComponent.unavailable(f"no {device} meter in this test")
        return EnergyComponent(value, method, [device], attribution)  # type: ignore[arg-type]

    return EnergyBlock(
        {
            "gpu": comp(gpu_j, "gpu0"),
            "cpu_pkg": comp(pkg_j, "package-0"),
            "cpu_dram": comp(dram_j, "dram-0"),
        }
    )


def record(
    i: int,
    *,
    hps: dict[str, Any],
    metrics: dict[str, float] | None = None,
    energy: EnergyBlock | None = None,
    study: str = "syn",
    target: str = "toy",
    model: str | None = "small",
    mode: str = "mutation",
    status: RunStatus = RunStatus.SUCCEEDED,
    attempt_log: list[dict[str, Any]] | None = None,
    background: dict[str, Any] | None = None,
    run_dir: str | None = None,
    duration_s: float = 10.0,
    power: PowerBlock | None = None,
) -> RunRecord:
    """One run; its attempt log defaults to a single attempt with the run's outcome."""
    energy = energy or energy_block(100.0)
    log = attempt_log
    if log is None:
        log = [
            {
                "attempt": 1,
                "status": status.value,
                "exit_code": 0,
                "duration_s": duration_s,
                "cpu_time_s": duration_s,
                "energy_total_j": energy.total_j,
                "energy_method": energy.total_method,
            }
        ]
    stamp = f"2025-01-01T{i // 3600:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000+00:00"
    return RunRecord(
        run_id=f"r{i:06d}",
        study=study,
        session="s1",
        slot_id=f"e0-{i}",
        target=target,
        model=model,
        mode=mode,
        hyperparameters=hps,
        mutated=sorted(hps),
        dedup_key=f"k{i}",
        status=status,
        attempts=len(log),
        exit_code=0 if status is RunStatus.SUCCEEDED else 1,
        started_at=stamp,
        ended_at=stamp,
        duration_s=duration_s,
        cpu_time_s=duration_s * 0.9,
        metrics=metrics if metrics is not None else {},
        energy=energy,
        power=power or PowerBlock(),
        background=background,
        attempt_log=log,
        run_dir=run_dir,
        error=None if status is RunStatus.SUCCEEDED else "exit status 1",
    )


def store(results: Path, records: Iterable[RunRecord]) -> Path:
    """Insert records into ``results/hyperjoule.db`` through the real store."""
    with ResultsStore(results) as db:
        for rec in records:
            db.insert_run(rec)
    return results


def epochs_study(
    n: int = 120, *, seed: int = 0, noise_j: float = 20.0, **extra: Any
) -> list[RunRecord]:
    """Energy = 100 J per epoch + noise; lr, batch size, optimizer vary but do nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        epochs = int(rng.integers(1, 11))
        hps = {
            "epochs": epochs,
            "lr": float(10 ** rng.uniform(-4, -1)),
            "batch_size": int(rng.choice([32, 64, 128])),
            "optimizer": str(rng.choice(["adam", "sgd", "rmsprop"])),
        }
        gpu_j = 100.0 * epochs + float(rng.normal(0, noise_j))
        acc = 0.9 + 0.005 * epochs + float(rng.normal(0, 0.002))
        out.append(
            record(i, hps=hps, metrics={"test_accuracy": acc}, energy=energy_block(gpu_j), **extra)
        )
    return out


def study_of(results: Path, make: Callable[[], list[RunRecord]]) -> Path:
    return store(results, make())
