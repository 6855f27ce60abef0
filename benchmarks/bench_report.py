"""Time ``hyperjoule report`` on a large synthetic study (goal: 100,000 runs in < 30 s, 2 cores).

Builds realistic run records (the runner's ``RunRecord`` shape, provenance included, one
retried attempt in twenty, a few failures) for 3 targets x 2 models with 7
hyperparameters and 3 metrics, bulk-inserts them into a real results database through
the storage layer's own row format, then times the ``hyperjoule report`` command (a fresh
process, CLI start-up included) pinned to two CPUs when the machine has more.

Usage: ``python benchmarks/bench_report.py [--runs 100000] [--keep DIR] [--repeat 1]``
(``--keep`` reuses a database built earlier for the same number of runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hyperjoule.records import EnergyBlock, EnergyComponent, PowerBlock, RunRecord, RunStatus
from hyperjoule.storage import ResultsStore
from hyperjoule.storage._schema import RUN_COLUMNS, run_row

TARGETS = ("digits-cnn", "digits-rnn", "digits-ff")
MODELS = ("small", "large")
GOAL_S = 30.0

# The CLI as installed.
CLI = "import sys\nfrom hyperjoule.cli import main\nsys.exit(main())\n"

PROVENANCE: dict[str, Any] = {
    "host": {
        "hostname": "bench",
        "user": "lab",
        "os": "Linux-6.8-x86_64-with-glibc2.36",
        "kernel": "6.8.0",
        "cpu_model": "AMD EPYC 7763 64-Core Processor",
        "cpu_count": 64,
        "memory_bytes": 540000000000,
        "python": "3.11.7",
        "hyperjoule": "0.1.0",
        "python_executable": "/opt/venv/bin/python3",
        "packages": {"torch": "2.13.0", "numpy": "2.4.6", "pydantic": "2.14.4"},
        "cuda_visible_devices": "0",
    },
    "target_code": {"git_commit": "9be2eac40ff9cd6990cef6d1b7e572a0113dfbca", "git_dirty": False},
    "cwd": "/home/lab/digits",
    "env": {"OMP_NUM_THREADS": "1"},
    "study_file": "/home/lab/study.yaml",
    "targets_file": "/home/lab/targets.yaml",
    "study_config_hash": "4d7168ec6f1c7377",
    "meters": ["nvml", "rapl"],
}


def make_record(i: int, rng: np.random.Generator) -> RunRecord:
    """One synthetic run whose energy follows epochs and batch size, accuracy follows lr."""
    target = TARGETS[i % 3]
    model = MODELS[(i // 3) % 2]
    epochs = int(rng.integers(1, 11))
    lr = float(10 ** rng.uniform(-3.5, -1.5))
    batch = int(rng.choice([32, 64, 128]))
    hps: dict[str, Any] = {
        "epochs": epochs,
        "lr": round(lr, 6),
        "batch_size": batch,
        "weight_decay": 0.0 if rng.random() < 0.3 else round(float(10 ** rng.uniform(-5, -2)), 6),
        "dropout": round(float(rng.uniform(0, 0.5)), 6),
        "optimizer": str(rng.choice(["adam", "sgd"])),
        "seed": int(rng.integers(0, 9999)),
    }
    scale = 1.0 + (i % 6) * 0.3
    gpu_j = scale * epochs * 1200 * (64 / batch) ** 0.3 * float(rng.lognormal(0, 0.05))
    pkg_j = gpu_j * 0.25 * float(rng.lognormal(0, 0.05))
    dram_j = gpu_j * 0.04
    acc = 0.97 - 0.2 * abs(np.log10(lr) + 2.5) ** 2 / 2 - 0.3 / epochs + rng.normal(0, 0.01)
    failed = rng.random() < 0.03
    status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    retried = rng.random() < 0.05
    duration_s = epochs * 12.0 * scale
    energy = EnergyBlock(
        {
            "gpu": EnergyComponent(gpu_j, "counter", ["gpu0 NVIDIA H100"], sampling_period_s=0.1),
            "cpu_pkg": EnergyComponent(pkg_j, "counter", ["package-0"]),
            "cpu_dram": EnergyComponent(dram_j, "counter", ["dram-0"]),
        }
    )
    attempts = []
    for a in range(2 if retried else 1):
        attempts.append(
            {
                "attempt": a + 1,
                "status": "failed" if (a == 0 and retried) else status.value,
                "reason": None,
                "exit_code": 0,
                "signal": None,
                "duration_s": duration_s,
                "cpu_time_s": duration_s * 0.9,
                "max_rss_bytes": 2_000_000_000,
                "energy_total_j": energy.total_j,
                "energy_method": "counter",
                "metrics_sources": {"test_accuracy": "line"},
                "metrics_problems": [],
                "log": f"attempt-{a + 1}.log",
            }
        )
    stamp = f"2026-01-{1 + i // 5000:02d}T{(i // 300) % 24:02d}:{(i // 5) % 60:02d}:{i % 60:02d}"
    return RunRecord(
        run_id=f"r{i:08d}",
        study="bench",
        session=f"s{i // 5000:03d}",
        slot_id=f"e{i % 6}-{i}",
        target=target,
        model=model,
        mode="mutation",
        hyperparameters=hps,
        mutated=["epochs", "lr", "batch_size"],
        dedup_key=f"k{i:08d}",
        status=status,
        attempts=len(attempts),
        exit_code=1 if failed else 0,
        started_at=stamp + ".000+00:00",
        ended_at=stamp + ".500+00:00",
        duration_s=duration_s,
        cpu_time_s=duration_s * 0.9,
        metrics={}
        if failed
        else {
            "test_accuracy": float(acc),
            "test_loss": float(1 - acc),
            "train_loss": float(0.9 - acc * 0.8),
            "epochs": float(epochs),
        },
        energy=energy,
        power=PowerBlock(
            gpu_j / duration_s,
            gpu_j / duration_s * 1.3,
            60.0,
            55.0,
            70.0,
            80.0,
            100.0,
            samples=int(duration_s * 10),
            sampling_period_s=0.1,
        ),
        attempt_log=attempts,
        command=["python", "train.py", "--epochs", str(epochs)],
        run_dir=None,
        provenance=PROVENANCE,
        error="exit status 1" if failed else None,
    )


def build(results: Path, runs: int) -> None:
    """Create the database with ``runs`` records (one transaction per 10,000 rows)."""
    ResultsStore(results).close()  # schema and migrations exactly as the runner makes them
    rng = np.random.default_rng(42)
    conn = sqlite3.connect(results / "hyperjoule.db", isolation_level=None)
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    sql = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})"
    for start in range(0, runs, 10_000):
        rows = [run_row(make_record(i, rng)) for i in range(start, min(start + 10_000, runs))]
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    conn.close()
    (results / "bench.json").write_text(json.dumps({"runs": runs}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep this results dir")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    results = args.keep or Path(tempfile.mkdtemp(prefix="hj-bench-report-"))
    marker = results / "bench.json"
    try:
        if not (marker.is_file() and json.loads(marker.read_text())["runs"] == args.runs):
            shutil.rmtree(results, ignore_errors=True)
            t0 = time.perf_counter()
            build(results, args.runs)
            print(f"built {args.runs:,} runs in {time.perf_counter() - t0:.1f} s")
        size_mb = (results / "hyperjoule.db").stat().st_size / 1e6
        cpus = sorted(os.sched_getaffinity(0))[:2]
        pin = ["taskset", "-c", ",".join(map(str, cpus))] if shutil.which("taskset") else []
        out = results / "report.html"
        command = [
            *pin,
            sys.executable,
            "-c",
            CLI,
            "report",
            "--results-dir",
            str(results),
            "-o",
            str(out),
        ]
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(command, check=True)
            times.append(time.perf_counter() - t0)
        best = min(times)
        print(
            f"hyperjoule report: {args.runs:,} runs ({size_mb:.0f} MB database) on "
            f"{len(cpus)} CPU(s): {best:.1f} s (best of {len(times)}: "
            f"{', '.join(f'{t:.1f}' for t in times)}; goal < {GOAL_S:.0f} s); "
            f"report {out.stat().st_size / 1e6:.1f} MB"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
