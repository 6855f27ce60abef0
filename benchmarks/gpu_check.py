"""GPU validation on a real CUDA machine: one prepared script, under 5 minutes, never in CI.

Prints, for the bundled digits CNN target on CUDA:
  1. GPU energy from the NVML counter against the 10 Hz power timeline integrated by the
     trapezoid rule (goal: within 2 %), per run;
  2. the achieved timeline rate (goal: >= 10 Hz);
  3. the NVML sampler's CPU cost (CPU seconds of this process per second of sampling);
  4. the RAPL counters read on this machine (or why they cannot be);
  5. with two GPUs or more: ``gpus_per_run: 1`` with as many jobs as GPUs, each run's
     GPU and whether concurrent runs held different GPUs.
Usage: ``python benchmarks/gpu_check.py [--runs 2] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import yaml

import hyperjoule.examples
from hyperjoule.config import load_study
from hyperjoule.devices import node_gpus
from hyperjoule.execution import run_study
from hyperjoule.meters import NvmlMeter, RunUsage, trapezoid_energy_j
from hyperjoule.meters._rapl import discover_rapl_zones, probe_rapl, read_energy_uj
from hyperjoule.records import RunRecord


def _study(root: Path, name: str, runs: int, epochs: int, **extra: object) -> Path:
    data = {
        "name": name,
        "targets": "targets.yaml",
        "seed": 1,
        "allow_estimates": True,
        "experiments": [
            {
                "target": "digits-cnn",
                "model": "large",
                "mode": "mutation",
                "mutate": ["seed"],
                "runs": runs,
                "hyperparameters": {"epochs": epochs},
            }
        ],
        **extra,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _timeline_j(record: RunRecord) -> tuple[float | None, float | None]:
    """(integrated energy in J over every GPU, achieved rate in Hz) from energy/gpu.csv."""
    path = Path(record.run_dir or "") / "energy" / "gpu.csv"
    if not path.is_file():
        return None, None
    per_gpu: dict[str, list[tuple[float, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["power_w"]:
                per_gpu.setdefault(row["gpu"], []).append(
                    (float(row["time_s"]), float(row["power_w"]))
                )
    energy_j = 0.0
    rates = []
    for samples in per_gpu.values():
        times, powers = zip(*samples, strict=True)
        energy_j += trapezoid_energy_j(times, powers)
        if len(times) > 1:
            rates.append((len(times) - 1) / (times[-1] - times[0]))
    return energy_j, (min(rates) if rates else None)


def check_energy(root: Path, runs: int, epochs: int) -> None:
    print("== 1-2. counter vs integrated GPU energy, timeline rate (digits-cnn large, CUDA)")
    result = run_study(load_study(_study(root, "gpucheck", runs, epochs)), root / "results")
    for record in result.records:
        gpu = record.energy.get("gpu")
        integrated_j, rate_hz = _timeline_j(record)
        diff = (
            f"{100 * (integrated_j - gpu.energy_j) / gpu.energy_j:+.2f} %"
            if integrated_j is not None and gpu.energy_j
            else "n/a"
        )
        print(
            f"run {record.run_id}: {record.status.value}, {record.duration_s:.1f} s; "
            f"gpu {gpu.energy_j} J ({gpu.method}, {gpu.devices}); timeline {integrated_j} J "
            f"-> diff {diff} (goal within 2 %); rate {rate_hz} Hz (goal >= 10)"
        )


def check_sampler_cost(seconds: float = 10.0) -> None:
    print("== 3. NVML sampler CPU cost")
    meter = NvmlMeter(sampling_period_s=0.1)
    scratch = Path(tempfile.mkdtemp(prefix="hj-gpucheck-"))
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        meter.start(scratch)
        time.sleep(seconds)
        reading = meter.stop(RunUsage(duration_s=seconds))
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        print(
            f"{cpu_s:.3f} CPU s over {wall_s:.1f} s = {100 * cpu_s / wall_s:.2f} % of one core; "
            f"{reading.power.samples if reading.power else '?'} samples"
        )
    finally:
        meter.close()
        shutil.rmtree(scratch, ignore_errors=True)


def check_rapl() -> None:
    print("== 4. RAPL")
    probe = probe_rapl()
    print(f"probe: {'available' if probe.available else 'unavailable'}: {probe.detail}")
    for zone in discover_rapl_zones():
        try:
            before = read_energy_uj(zone)
            time.sleep(1.0)
            after = read_energy_uj(zone)
            print(f"{zone.device}: {(after - before) / 1e6:.2f} J over 1 s (counter)")
        except Exception as e:  # a permission error is a finding, not a crash
            print(f"{zone.device}: cannot read: {e}")


def check_jobs(root: Path, epochs: int) -> None:
    gpus = node_gpus()
    print(f"== 5. --jobs with one GPU per run ({len(gpus)} GPU(s): {list(gpus)})")
    if len(gpus) < 2:
        print("skipped: needs two GPUs or more")
        return
    study = _study(root, "gpujobs", 2 * len(gpus), epochs, executor={"gpus_per_run": 1})
    start = time.perf_counter()
    result = run_study(load_study(study), root / "results")
    print(f"{len(result.records)} runs in {time.perf_counter() - start:.1f} s")
    for record in result.records:
        executor = record.provenance.get("executor", {})
        print(
            f"run {record.run_id}: {record.status.value} gpu_ids={executor.get('gpu_ids')} "
            f"{record.started_at} -> {record.ended_at}; gpu {record.energy.get('gpu').energy_j} J "
            f"({record.energy.get('gpu').attribution})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hj-gpucheck-"))
    try:
        examples = Path(hyperjoule.examples.__file__).parent
        shutil.copy(examples / "targets.yaml", root / "targets.yaml")
        shutil.copytree(examples / "digits", root / "digits")
        check_energy(root, args.runs, args.epochs)
        check_sampler_cost()
        check_rapl()
        check_jobs(root, max(2, args.epochs // 2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
