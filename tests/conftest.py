"""Shared fixtures: a small research-style training script and targets around it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

# The shared Ray cluster fixtures (Ray itself is imported only when a test uses them).
pytest_plugins = ["ray_cluster"]

# A stand-in for an external research script: human-readable lines only, a model flag,
# fixed arguments. Its behaviour is chosen by a fixed argument so tests can make it crash,
# run out of memory, hang (with a child in its process group) or print no metrics.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import argparse, os, subprocess, sys, time

    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["small", "large"])
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--optim", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--behaviour", default="ok")
    p.add_argument("--sleep", type=float, default=0.0)
    a = p.parse_args()
    attempt = int(os.environ.get("HYPERJOULE_ATTEMPT", "1"))
    print(f"model={a.model} epochs={a.epochs} lr={a.lr} optim={a.optim}", flush=True)
    time.sleep(a.sleep)
    if a.behaviour == "crash":
        print("Traceback (most recent call last):\\nRuntimeError: boom", flush=True)
        sys.exit(3)
    if a.behaviour == "oom":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
        sys.exit(1)
    if a.behaviour == "flaky" and attempt == 1:
        print("transient failure", flush=True)
        sys.exit(1)
    if a.behaviour == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(os.environ["HYPERJOULE_RUN_DIR"], "pids.txt"), "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        time.sleep(600)
    for epoch in range(1, a.epochs + 1):
        print(f"Epoch {epoch}/{a.epochs} loss={1.0 / epoch:.4f}", flush=True)
    if a.behaviour == "nometrics":
        sys.exit(0)
    acc = 90.0 + a.epochs * 0.5 + (1.0 if a.model == "large" else 0.0)
    print(f"Test Accuracy: {acc:.2f}%", flush=True)
    print(f"Test Accuracy: {acc + 0.25:.2f}%  (final)", flush=True)
    """
)


def target_block(behaviour: str = "ok", **extra: object) -> dict[str, object]:
    """A targets.yaml entry for the stand-in script."""
    block: dict[str, object] = {
        "workdir": "code",
        "command": ["{python}", "train.py"],
        "models": ["small", "large"],
        "model_flag": "--model",
        "args": ["--dataset", "toy", "--behaviour", behaviour],
        "timeout_s": 60,
        "hyperparameters": {
            "epochs": {"flag": "--epochs", "type": "int", "default": 2, "range": [1, 5]},
            "lr": {
                "flag": "--lr",
                "type": "float",
                "default": 0.1,
                "range": [0.001, 1.0],
                "distribution": "log_uniform",
            },
            "optim": {
                "flag": "--optim",
                "type": "choice",
                "default": "sgd",
                "choices": ["sgd", "adam"],
            },
        },
        "metrics": {"test_accuracy": {"regex": r"Test Accuracy:\s*([0-9.]+)%", "match": "last"}},
        "required_metrics": ["test_accuracy"],
    }
    block.update(extra)
    return block


class Project:
    """A directory with the stand-in script, a targets file and studies."""

    seed = 7  # the studies' plan seed

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "code").mkdir(parents=True, exist_ok=True)
        (root / "code" / "train.py").write_text(TRAIN_SCRIPT)
        self.results = root / "results"
        self.write_targets({"toy": target_block()})

    def write_targets(self, targets: dict[str, object]) -> Path:
        path = self.root / "targets.yaml"
        path.write_text(yaml.safe_dump({"targets": targets}, sort_keys=False))
        return path

    def write_study(
        self, experiments: list[dict[str, object]], name: str = "s", **top: object
    ) -> Path:
        # No RAPL on CI machines: accept the labelled CPU estimate like a laptop user would.
        data: dict[str, object] = {
            "name": name,
            "targets": "targets.yaml",
            "seed": self.seed,
            "allow_estimates": True,
        }
        data.update(top)
        data["experiments"] = experiments
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], Project]:
    def make(name: str) -> Project:
        return Project(tmp_path / name)

    return make
