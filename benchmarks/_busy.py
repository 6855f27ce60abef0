"""The busy stand-in training target shared by the executor benchmarks.

One single-thread script that keeps a core busy for ``--seconds`` (wall-clock or CPU
time) and prints an accuracy, its ``busy`` target, and mutation studies of its seed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

_SCRIPT = textwrap.dedent(
    """
    import argparse, time
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    a = p.parse_args()
    end = time.{clock}() + a.seconds
    while time.{clock}() < end:   # one busy thread, like a small training loop
        pass
    print(f"Final test_accuracy={{0.9 + a.seed * 1e-4}}")
    """
)


def write_busy_project(root: Path, seconds: float, *, cpu_time: bool = False) -> None:
    """Write ``train.py`` and ``targets.yaml`` (target ``busy``) into ``root``.

    Args:
        root: The project directory.
        seconds: Default busy time of a run.
        cpu_time: Count CPU time (``process_time``) instead of wall-clock time, so a run
            sharing its core still does the same work.
    """
    clock = "process_time" if cpu_time else "perf_counter"
    (root / "train.py").write_text(_SCRIPT.format(clock=clock))
    (root / "targets.yaml").write_text(
        textwrap.dedent(
            f"""
            targets:
              busy:
                command: ["{{python}}", "train.py"]
                env: {{OMP_NUM_THREADS: "1"}}
                hyperparameters:
                  seconds: {{flag: --seconds, type: float, default: {seconds}}}
                  seed: {{flag: --seed, type: int, default: 1, range: [0, 99999]}}
                metrics:
                  test_accuracy: {{regex: 'Final test_accuracy=([0-9.]+)'}}
                required_metrics: [test_accuracy]
            """
        )
    )


def write_seed_study(root: Path, name: str, runs: int, *, seed: int = 1) -> Path:
    """Write a study of ``runs`` distinct seeds of the busy target; return its path."""
    path = root / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ntargets: targets.yaml\nseed: {seed}\nallow_estimates: true\n"
        f"experiments:\n  - {{target: busy, mode: mutation, mutate: [seed], runs: {runs}}}\n"
    )
    return path
