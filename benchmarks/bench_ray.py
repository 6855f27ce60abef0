"""Ray executor: throughput on two one-CPU nodes vs one, and per-run overhead vs local.

A local Ray cluster on this machine (head with no CPU, worker nodes ``node_a`` and
``node_b`` with one CPU each) runs the same study twice:

1. 8 single-thread busy runs of ~5 s on one node (``resources: {node_a: 1}``) and on
   both nodes; prints both wall times and the throughput ratio (goal: >= 1.8). Ray
   start-up (cluster and driver connection) is timed and reported separately.
2. Per-run overhead of the whole path (task built, placed, run, files and record back):
   6 runs of ~0.5 s on one Ray node vs the local executor (``jobs: 1``); overhead per run
   = (study wall time - sum of the runs' own durations) / runs.

Usage: ``python benchmarks/bench_ray.py [--runs 8] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _busy import write_busy_project, write_seed_study

from hyperjoule.config import ExecutorConfig, load_study
from hyperjoule.execution import run_study
from hyperjoule.records import RunStatus


def _run(root: Path, name: str, runs: int, seconds: float, executor: ExecutorConfig) -> Any:
    write_busy_project(root, seconds)
    study = write_seed_study(root, name, runs)
    start = time.perf_counter()
    result = run_study(load_study(study), root / "results", executor=executor)
    wall_s = time.perf_counter() - start
    ok = [r for r in result.records if r.status is RunStatus.SUCCEEDED]
    if len(ok) != runs:
        raise SystemExit(f"{name}: only {len(ok)} of {runs} runs succeeded")
    nodes = {(r.provenance.get("executor") or {}).get("node_id") for r in ok}
    busy_s = sum(r.duration_s or 0.0 for r in ok)
    return wall_s, busy_s, len(nodes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--overhead-runs", type=int, default=6)
    parser.add_argument("--overhead-seconds", type=float, default=0.5)
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="hj-bench-ray-"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p
        for p in (str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH"))
        if p
    )
    started = time.perf_counter()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        for name in ("node_a", "node_b"):
            cluster.add_node(num_cpus=1, resources={name: 1}, include_dashboard=False)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        startup_s = time.perf_counter() - started
        one = ExecutorConfig(kind="ray", resources={"node_a": 1})
        two = ExecutorConfig(kind="ray")
        # Warm-up: the first tasks of a job start the nodes' worker processes.
        _run(root, "warmup", 2, 0.1, two)
        one_s, _, one_nodes = _run(root, "one_node", args.runs, args.seconds, one)
        two_s, _, two_nodes = _run(root, "two_nodes", args.runs, args.seconds, two)
        print(f"Ray start-up (cluster of 2 worker nodes + driver): {startup_s:.1f} s (excluded)")
        print(
            f"{args.runs} runs of {args.seconds:.1f} s, one node  ({one_nodes} used): {one_s:.1f} s"
        )
        print(
            f"{args.runs} runs of {args.seconds:.1f} s, two nodes ({two_nodes} used): {two_s:.1f} s"
        )
        print(f"throughput ratio two/one nodes: {one_s / two_s:.2f}  (goal >= 1.8)")

        n, secs = args.overhead_runs, args.overhead_seconds
        ray_s, ray_busy_s, _ = _run(root, "overhead_ray", n, secs, one)
        local_s, local_busy_s, _ = _run(
            root, "overhead_local", n, secs, ExecutorConfig(kind="local", jobs=1)
        )
        ray_over = (ray_s - ray_busy_s) / n
        local_over = (local_s - local_busy_s) / n
        print(
            f"per-run overhead, {n} runs of {secs:.1f} s: ray {ray_over:.2f} s, "
            f"local {local_over:.2f} s, ray - local {ray_over - local_over:+.2f} s"
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
