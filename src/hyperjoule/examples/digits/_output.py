"""Output of the bundled digits scripts: ``config.json``, ``history.json`` and the metrics.

``config.json`` holds what a reader needs to reproduce a run, ``history.json`` the
per-epoch metrics (rewritten after every epoch, so it is current after a crash), and the
run ends with one structured line that hyperjoule reads::

    HYPERJOULE_METRICS {"test_accuracy": 0.97, "test_loss": 0.1, "train_loss": 0.2, "epochs": 5}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    EXAMPLES_VERSION,
    METRICS_PREFIX,
    Digits,
    environment,
    load_digits_split,
    setup,
    sha256_file,
)
from torch import nn


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _finite(value: float) -> float | None:
    # A diverged loss is NaN, which strict JSON cannot hold; null says "no number".
    return value if np.isfinite(value) else None


class RunOutput:
    """The run's output directory, its ``config.json`` and ``history.json``, and the metrics."""

    def __init__(
        self,
        script: Path,
        script_version: str,
        args: argparse.Namespace,
        device: torch.device,
        data: Digits,
    ) -> None:
        if args.out_dir is not None:
            self.directory, source = args.out_dir, "--out-dir"
        elif os.environ.get("HYPERJOULE_RUN_DIR"):
            self.directory, source = Path(os.environ["HYPERJOULE_RUN_DIR"]), "HYPERJOULE_RUN_DIR"
        else:
            self.directory, source = Path.cwd(), "current directory"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.history: list[dict[str, Any]] = []
        flags = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        self.config: dict[str, Any] = {
            "script": script.name,
            "script_version": script_version,
            "script_sha256": sha256_file(script),
            "common_sha256": sha256_file(Path(__file__).with_name("_common.py")),
            "output_sha256": sha256_file(Path(__file__)),
            "examples_version": EXAMPLES_VERSION,
            "argv": sys.argv[1:],
            "flags": flags,
            "seeding": {
                "seed": args.seed,
                "controls": "weight initialisation, batch order, dropout masks and every "
                "other random draw in training",
                "split": "fixed (dataset.split.split_seed), the same for every seed",
            },
            "history": {
                "file": "history.json",
                "duration_s": "wall time of the epoch's training plus test evaluation",
            },
            **environment(device, args.device),
            "dataset": data.info,
            "output": {"directory": str(self.directory.resolve()), "chosen_by": source},
        }

    def write_config(self, **parts: Any) -> None:
        """Add the model, loss, optimizer and scheduler and write ``config.json``."""
        self.config.update(parts)
        write_json_atomic(self.directory / "config.json", self.config)

    def record_epoch(
        self, epoch: int, train_loss: float, test_loss: float, accuracy: float, duration_s: float
    ) -> None:
        """Print one human line and rewrite ``history.json`` (kept current after a crash)."""
        self.history.append(
            {
                "epoch": epoch,
                "train_loss": _finite(train_loss),
                "test_loss": _finite(test_loss),
                "test_accuracy": accuracy,
                "duration_s": duration_s,
            }
        )
        write_json_atomic(self.directory / "history.json", self.history)
        print(
            f"Epoch {epoch}/{self.args.epochs} train_loss={train_loss:.4f} "
            f"test_loss={test_loss:.4f} test_accuracy={accuracy:.4f} ({duration_s:.2f} s)",
            flush=True,
        )

    def finish(self) -> dict[str, Any]:
        """Print the structured metrics line and the human final line; return the metrics."""
        last = self.history[-1]
        metrics = {k: last[k] for k in ("test_accuracy", "test_loss", "train_loss")}
        metrics["epochs"] = last["epoch"]
        # A diverged loss is left out rather than reported as a number it is not.
        metrics = {k: v for k, v in metrics.items() if v is not None}
        metrics_file = os.environ.get("HYPERJOULE_METRICS_FILE")
        if metrics_file:
            write_json_atomic(Path(metrics_file), metrics)
        print(METRICS_PREFIX + json.dumps(metrics), flush=True)
        print(f"Final test_accuracy={metrics['test_accuracy']:.4f}", flush=True)
        return metrics


def run_script(
    name: str,
    script: Path,
    script_version: str,
    parser: argparse.ArgumentParser,
    build_model: Callable[[argparse.Namespace], nn.Module],
    train: Callable[[nn.Module, Digits, argparse.Namespace, torch.device, RunOutput], None],
    argv: list[str] | None = None,
) -> int:
    """The ``main`` every digits script shares: flags, data, output, model, training."""
    args = parser.parse_args(argv)
    device = setup(parser, args)
    data = load_digits_split(device)
    output = RunOutput(script, script_version, args, device, data)
    model = build_model(args).to(device)
    print(
        f"{name} model={args.model} device={device} train={len(data.y_train)} "
        f"test={len(data.y_test)}",
        flush=True,
    )
    train(model, data, args, device, output)
    return 0
