"""A project around the synthetic search target (tests/fixtures/search/synthetic_train.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from conftest import Project

SCRIPT = Path(__file__).parent / "fixtures" / "search" / "synthetic_train.py"


def synthetic_target(**extra: Any) -> dict[str, Any]:
    """targets.yaml entry of the synthetic target; ``extra`` overrides keys."""
    block: dict[str, Any] = {
        "workdir": "code",
        "command": ["{python}", "synthetic_train.py"],
        "args": ["--work-ms", "1"],
        "timeout_s": 60,
        "hyperparameters": {
            "epochs": {"flag": "--epochs", "type": "int", "default": 3, "range": [1, 8]},
            "lr": {
                "flag": "--lr",
                "type": "float",
                "default": 0.1,
                "range": [0.001, 1.0],
                "distribution": "log_uniform",
            },
            "width": {
                "flag": "--width",
                "type": "int",
                "default": 16,
                "range": [4, 64],
                "distribution": "log_uniform",
            },
            "wd": {
                "flag": "--wd",
                "type": "float",
                "default": 0.0,
                "range": [1.0e-5, 1.0e-2],
                "distribution": "log_uniform",
                "zero_probability": 0.3,
            },
            "optim": {
                "flag": "--optim",
                "type": "choice",
                "default": "sgd",
                "choices": ["sgd", "adam"],
            },
        },
        "required_metrics": ["test_accuracy"],
    }
    block.update(extra)
    return block


class SearchProject(Project):
    """A directory with the synthetic target, its targets file and studies."""

    seed = 3

    def __init__(self, root: Path, **target_extra: Any) -> None:
        self.root = root
        (root / "code").mkdir(parents=True, exist_ok=True)
        shutil.copy(SCRIPT, root / "code" / SCRIPT.name)
        self.results = root / "results"
        self.write_targets({"synth": synthetic_target(**target_extra)})


def search_experiment(**extra: Any) -> dict[str, Any]:
    """A search experiment on the synthetic target."""
    exp: dict[str, Any] = {
        "target": "synth",
        "mode": "search",
        "search": "all",
        "objectives": {"energy_j": "minimize", "test_accuracy": "maximize"},
        "trials": 6,
        "sampler": "tpe",
    }
    exp.update(extra)
    return exp
