"""Throughput of ``--jobs 2`` against ``--jobs 1`` for single-thread CPU runs.

Eight ~3 s busy single-thread runs, as one study run with ``--jobs 1`` and the same
study (fresh results) with ``--jobs 2``; prints both wall times, the speed-up (goal on a
2-core machine: >= 1.8x) and the load average before each, since other work on the
machine takes cores away; the same commands run bare, one and N at a time, show what the
machine gave at that moment. Usage:
``python benchmarks/bench_jobs.py [--runs 8] [--seconds 3] [--jobs 2] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _busy import write_busy_project, write_seed_study


def _run(root: Path, study: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hyperjoule", "run", str(study)]
        + ["--results-dir", str(root / f"results-{study.stem}"), "--jobs", str(jobs)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _bare(root: Path, runs: int, seconds: float, jobs: int) -> float:
    """The same commands with no tool: ``jobs`` at a time from a thread pool."""
    argv = [sys.executable, "train.py", "--seconds", str(seconds), "--seed"]
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(
            pool.map(
                lambda seed: subprocess.run(
                    [*argv, str(seed)], cwd=root, check=True, stdout=subprocess.DEVNULL
                ),
                range(runs),
            )
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hj-bench-jobs-"))
    try:
        write_busy_project(root, args.seconds, cpu_time=True)
        serial: list[float] = []
        parallel: list[float] = []
        bare_serial: list[float] = []
        bare_parallel: list[float] = []
        loads: list[str] = []
        for rep in range(args.repeat):
            loads.append(f"{os.getloadavg()[0]:.1f}")
            bare_serial.append(_bare(root, args.runs, args.seconds, 1))
            serial.append(_run(root, write_seed_study(root, f"serial{rep}", args.runs), 1))
            bare_parallel.append(_bare(root, args.runs, args.seconds, args.jobs))
            parallel.append(_run(root, write_seed_study(root, f"par{rep}", args.runs), args.jobs))
        one, many = min(serial), min(parallel)
        bare_one, bare_many = min(bare_serial), min(bare_parallel)
        print(
            f"{args.runs} runs x {args.seconds:.1f} s CPU, single-thread; {os.cpu_count()} cores; "
            f"best of {args.repeat}; 1-min load before each: {', '.join(loads)}"
        )
        print(f"bare, 1 at a time: {bare_one:.2f} s; {args.jobs} at a time: {bare_many:.2f} s")
        print(f"--jobs 1:          {one:.2f} s")
        print(f"--jobs {args.jobs}:          {many:.2f} s")
        print(
            f"speed-up:          {one / many:.2f}x  (goal >= 1.8x on 2 idle cores; "
            f"the bare commands got {bare_one / bare_many:.2f}x at the same time)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
