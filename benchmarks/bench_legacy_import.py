"""Speed of ``hyperjoule import`` on a lab-sized history.

Generates a ``raw_data.csv`` like the lab's (about 1,200 rows: ~1,000 runs, 210 of them
repeated under a stage-prefixed id, a few exact repeats) and one session directory whose
``experiment.json`` files and ``summary.csv`` describe 300 of those runs again, with
timestamps a fraction of a millisecond apart. Times, side by side:

* reading the CSV with :mod:`csv` alone (the floor),
* ``read_legacy_results`` (read, group, merge, type; nothing written),
* ``import_legacy`` into a fresh database,
* the same import again (every run already there: the idempotent path).

Usage: ``python benchmarks/bench_legacy_import.py [--runs 1000] [--session 300]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from hyperjoule.legacy import import_legacy, read_legacy_results

MODELS = [
    ("examples", "mnist"),
    ("examples", "mnist_ff"),
    ("examples", "mnist_rnn"),
    ("pytorch_resnet_cifar10", "resnet20"),
    ("Person_reID_baseline_pytorch", "densenet121"),
    ("MRT-OAST", "default"),
    ("VulBERTa", "mlp"),
]
COLUMNS = [
    "experiment_id",
    "timestamp",
    "mode",
    "repository",
    "model",
    "training_success",
    "duration_seconds",
    "retries",
    "hyperparam_epochs",
    "hyperparam_learning_rate",
    "hyperparam_seed",
    "perf_test_accuracy",
    "energy_cpu_pkg_joules",
    "energy_cpu_ram_joules",
    "energy_gpu_total_joules",
    "error_message",
    "experiment_source",
]


def _rows(runs: int, rng: random.Random) -> list[dict[str, str]]:
    start = datetime(2025, 11, 1, 8, 0, 0)
    rows = []
    for i in range(runs):
        repo, model = MODELS[i % len(MODELS)]
        start += timedelta(seconds=rng.uniform(60, 4000), microseconds=rng.randrange(10**6))
        ok = rng.random() > 0.03
        rows.append(
            {
                "experiment_id": f"{repo}_{model}_{i % 40 + 1:03d}",
                "timestamp": start.isoformat(),
                "mode": "mutation",
                "repository": repo,
                "model": model,
                "training_success": str(ok),
                "duration_seconds": f"{rng.uniform(8, 4300):.1f}",
                "retries": "0",
                "hyperparam_epochs": str(rng.randint(5, 60)),
                "hyperparam_learning_rate": f"{rng.uniform(0.001, 0.1):.6f}",
                "hyperparam_seed": str(rng.randint(0, 9999)),
                "perf_test_accuracy": f"{rng.uniform(60, 99):.2f}" if ok else "",
                "energy_cpu_pkg_joules": f"{rng.uniform(300, 50000):.1f}",
                "energy_cpu_ram_joules": f"{rng.uniform(20, 3000):.1f}",
                "energy_gpu_total_joules": f"{rng.uniform(1000, 1_000_000):.1f}",
                "error_message": "" if ok else "RuntimeError: CUDA out of memory",
                "experiment_source": f"run_{start:%Y%m%d}_080000",
            }
        )
    return rows


def _write(root: Path, runs: int, session: int) -> Path:
    rng = random.Random(7)
    rows = _rows(runs, rng)
    prefixed = [dict(r, experiment_id="default__" + r["experiment_id"]) for r in rows[:210]]
    repeats = [dict(r) for r in rows[-15:]]
    table = rows + prefixed + repeats
    rng.shuffle(table)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "raw_data.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    run_dir = root / "run_20251101_080000"
    run_dir.mkdir()
    with (run_dir / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for k, row in enumerate(rows[:session]):
            later = datetime.fromisoformat(row["timestamp"]) + timedelta(microseconds=300)
            writer.writerow(dict(row, timestamp=later.isoformat()))
            record = {
                "experiment_id": row["experiment_id"],
                "timestamp": row["timestamp"],
                "repository": row["repository"],
                "model": row["model"],
                "hyperparameters": {
                    "epochs": int(row["hyperparam_epochs"]),
                    "learning_rate": float(row["hyperparam_learning_rate"]),
                    "seed": int(row["hyperparam_seed"]),
                },
                "duration_seconds": float(row["duration_seconds"]),
                "training_success": row["training_success"] == "True",
                "retries": 0,
                "error_message": row["error_message"],
                "performance_metrics": {"test_accuracy": row["perf_test_accuracy"] or None},
                "energy_metrics": {
                    "cpu_energy_pkg_joules": float(row["energy_cpu_pkg_joules"]),
                    "cpu_energy_ram_joules": float(row["energy_cpu_ram_joules"]),
                    "gpu_energy_total_joules": float(row["energy_gpu_total_joules"]),
                },
            }
            exp = run_dir / f"{row['experiment_id']}_{k}"
            exp.mkdir()
            (exp / "experiment.json").write_text(json.dumps(record), encoding="utf-8")
    return root


def _timed(label: str, action: object) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    result = action()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    # CPU time too: on a shared machine the wall time includes waiting for a core.
    print(f"{label:<44} {elapsed:8.3f} s wall {time.process_time() - cpu:8.3f} s CPU")
    del result
    return elapsed


def main() -> None:
    """Generate the history, import it, print the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--session", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(Path(tmp) / "old", args.runs, args.session)
        raw = root / "raw_data.csv"
        with raw.open(encoding="utf-8") as f:
            n_rows = sum(1 for _ in csv.DictReader(f))
        print(f"raw_data.csv: {n_rows} rows; session: {args.session} experiment.json + summary")

        def parse() -> list[dict[str, str]]:
            with raw.open(encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f))

        floor = _timed("csv.DictReader(raw_data.csv)", parse)
        read = _timed("read_legacy_results(raw_data.csv)", lambda: read_legacy_results([raw]))
        results = Path(tmp) / "results"
        first = _timed(
            "import_legacy(raw_data.csv), fresh database", lambda: import_legacy([raw], results)
        )
        whole = _timed(
            "import_legacy(whole tree), runs stored", lambda: import_legacy([root], results)
        )
        again = _timed("import_legacy(whole tree) again", lambda: import_legacy([root], results))
        records, merged, _ = read_legacy_results([root])
        print(
            f"runs: {len(records)} from {n_rows + 2 * args.session} descriptions ({merged} merged)"
        )
        print(f"ratio read/csv floor: {read / floor:.1f}x; import/read: {first / read:.2f}x")
        print(f"whole tree into stored runs: {whole:.2f} s; again: {again:.2f} s")


if __name__ == "__main__":
    main()
