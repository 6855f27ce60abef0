"""Cost of measurement: the training's own compute time measured vs bare, side by side.

A fixed amount of CPU work (a training stand-in that reports how long its work took) runs
alternately bare and inside a full measurement window: every meter this machine has,
plus, where the machine lacks them, RAPL on a powercap tree and NVML on a stand-in GPU
sampled at 10 Hz (so the sampler threads do their full work here too). Reports the
ratio of the work's compute time (goal <= 1.02) and the CPU share of hyperjoule's
sampler threads.

Usage: ``python benchmarks/bench_meters.py [--repeat 5] [--work-s 3]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "meters"))

from fake_nvml import two_gpus  # noqa: E402
from fake_powercap import FakePowercap  # noqa: E402

from hyperjoule.devices import NodeDevices
from hyperjoule.meters import (  # noqa: E402
    Meter,
    MeterConfig,
    NvmlMeter,
    RaplMeter,
    RunUsage,
    create_meters,
)

WORK = textwrap.dedent(
    """
    import sys, time
    n = int(sys.argv[1])
    t0 = time.process_time()
    acc = 0
    for i in range(n):
        acc += i * i % 7
    print(time.process_time() - t0)
    """
)


def _calibrate(work_s: float) -> int:
    """Iterations that take about ``work_s`` seconds of CPU here."""
    n = 2_000_000
    out = subprocess.run(
        [sys.executable, "-c", WORK, str(n)], capture_output=True, text=True, check=True
    )
    return int(n * work_s / float(out.stdout))


def _work(n: int) -> tuple[float, float]:
    """Run the work once; return (its own compute seconds, wall seconds)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", WORK, str(n)], capture_output=True, text=True, check=True
    )
    return float(out.stdout), time.perf_counter() - start


def _meters(root: Path) -> list[Meter]:
    meters = create_meters(MeterConfig())
    names = {m.name for m in meters}
    if "rapl" not in names:
        powercap = FakePowercap(root)
        powercap.add_package(0)
        meters.append(RaplMeter(powercap.root, poll_s=1.0))
    if "nvml" not in names:
        meters.append(NvmlMeter(sampling_period_s=0.1, nvml=two_gpus()))
    return meters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work-s", type=float, default=3.0)
    args = parser.parse_args()
    n = _calibrate(args.work_s)
    with tempfile.TemporaryDirectory(prefix="hj-bench-meters-") as tmp:
        meters = _meters(Path(tmp) / "sys")
        # The real path: every window goes through the node's shared device meters.
        devices = NodeDevices(fixed=meters, scratch_dir=Path(tmp) / "scratch")
        bare_s: list[float] = []
        measured_s: list[float] = []
        sampler_cpu_s = 0.0
        measured_wall_s = 0.0
        for rep in range(args.repeat):
            compute_s, _ = _work(n)
            bare_s.append(compute_s)
            run_dir = Path(tmp) / f"run{rep}"
            run_dir.mkdir()
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            window = devices.open_window(f"r{rep}/1", gpus=None, environ={}, run_dir=run_dir)
            compute_s, wall_s = _work(n)
            window.close(RunUsage(duration_s=wall_s, cpu_time_s=compute_s))
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            measured_s.append(compute_s)
            # This process only waits for the child: its CPU time is the meters' cost.
            sampler_cpu_s += (cpu_after.ru_utime - cpu_before.ru_utime) + (
                cpu_after.ru_stime - cpu_before.ru_stime
            )
            measured_wall_s += wall_s
        devices.close()
        for meter in meters:
            meter.close()
    bare, measured = statistics.median(bare_s), statistics.median(measured_s)
    # Bare and measured runs alternate; the median of pair ratios cancels slow drifts of
    # the machine (other load, frequency changes) that medians of each side would keep.
    pair_ratio = statistics.median(m / b for m, b in zip(measured_s, bare_s, strict=True))
    print(f"meters: {', '.join(m.name for m in meters)} (GPU sampled at 10 Hz)")
    print(
        f"work compute time, median of {args.repeat}: bare {bare:.3f} s, measured {measured:.3f} s"
    )
    print(f"ratio measured/bare (median of {args.repeat} pairs): {pair_ratio:.4f}  (goal <= 1.02)")
    print(
        f"sampler CPU: {sampler_cpu_s:.3f} s over {measured_wall_s:.1f} s measured "
        f"= {100 * sampler_cpu_s / measured_wall_s:.2f} % of one core"
    )


if __name__ == "__main__":
    main()
