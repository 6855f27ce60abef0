"""Peak memory of the runner while a target prints a lot, whatever its line endings.

A real ``hyperjoule run`` (a child process) runs one target that prints ``--mb`` MiB:

* ``newline``: progress lines ending in ``\\n`` (the easy case),
* ``cr``: tqdm-style progress redrawn with ``\\r`` only (no ``\\n`` until the end),
* ``one-line``: a single line of ``--mb`` MiB,

then its metric. The runner's peak RSS is read from ``/proc/<pid>/status`` (``VmHWM``,
that process alone, sampled until it exits) and from ``wait4`` (the runner and the
descendants it waited for, i.e. also the target). Goal: under 300 MB for every case.

Usage: ``python benchmarks/bench_output_memory.py [--mb 200]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import yaml

TARGET = textwrap.dedent(
    """
    import sys
    case, mib = sys.argv[1], int(sys.argv[2])
    end = {"newline": "\\n", "cr": "\\r", "one-line": ""}[case]
    unit = (" 42%|########          | 4200/10000 [00:01<00:02, 3000.00it/s]" + end).encode()
    block = unit * (1024 * 1024 // len(unit))
    out = sys.stdout.buffer
    written = 0
    while written < mib * 1024 * 1024:
        out.write(block)
        written += len(block)
    out.write(b"\\nTest Accuracy: 91.5%\\n")
    out.flush()
    """
)
CASES = ("newline", "cr", "one-line")


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _measure(root: Path, case: str, mib: int) -> tuple[float, float, float]:
    targets = {
        "targets": {
            "loud": {
                "command": [sys.executable, "loud.py", case, str(mib)],
                "metrics": {"acc": {"regex": r"Test Accuracy:\s*([0-9.]+)%"}},
                "required_metrics": ["acc"],
            }
        }
    }
    (root / "targets.yaml").write_text(yaml.safe_dump(targets))
    study = {
        "name": f"mem-{case}",
        "targets": "targets.yaml",
        "allow_estimates": True,
        "experiments": [{"target": "loud", "mode": "default"}],
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    argv = [sys.executable, "-m", "hyperjoule", "run", "study.yaml", "--results-dir", "results"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_kib
        while not done.is_set():
            peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid) or 0)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{case}: hyperjoule run exited {proc.returncode}: {err}")
    return peak_kib / 1024, usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    """Run every case and print the runner's peak memory side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="MiB the target prints")
    args = parser.parse_args()
    print(f"target prints {args.mb} MiB; runner peak RSS (MiB)")
    print(f"{'case':<10} {'runner VmHWM':>13} {'wait4 max':>10} {'wall s':>7}")
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "loud.py").write_text(TARGET)
            runner, tree, wall = _measure(root, case, args.mb)
        verdict = "ok" if runner < 300 else "OVER 300 MB"
        print(f"{case:<10} {runner:>13.1f} {tree:>10.1f} {wall:>7.1f}  {verdict}")


if __name__ == "__main__":
    main()
