"""Overhead of hyperjoule against the same commands run bare, side by side in one run.

Six ~1 s runs of a small script: (a) run in a plain loop with subprocess, (b) run as a
study with ``hyperjoule run`` (CLI start-up included). Prints both wall times and the
ratio (goal: <= 1.15, issue 15).
Usage: ``python benchmarks/bench_overhead.py [--runs 6] [--sleep 1]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _busy import write_busy_project, write_seed_study


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hj-bench-"))
    try:
        write_busy_project(root, args.seconds)
        bare_s: list[float] = []
        tool_s: list[float] = []
        hyperjoule = [sys.executable, "-m", "hyperjoule"]
        for rep in range(args.repeat):
            study = write_seed_study(root, f"bench{rep}", args.runs, seed=rep)
            start = time.perf_counter()
            for seed in range(args.runs):
                subprocess.run(
                    [
                        sys.executable,
                        "train.py",
                        "--seconds",
                        str(args.seconds),
                        "--seed",
                        str(seed),
                    ],
                    cwd=root,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            bare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(
                [*hyperjoule, "run", str(study), "--results-dir", str(root / "results")],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tool_s.append(time.perf_counter() - start)
        bare, tool = min(bare_s), min(tool_s)
        print(f"runs per study: {args.runs} x {args.seconds:.1f} s busy; best of {args.repeat}")
        print(f"bare loop:        {bare:.2f} s")
        print(f"hyperjoule run:   {tool:.2f} s (CLI start-up, planning, recording included)")
        print(f"ratio:            {tool / bare:.3f}  (goal <= 1.15)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
