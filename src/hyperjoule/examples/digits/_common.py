"""Shared parts of the bundled digits training scripts: flags, data, seeding and output.

The scripts stand in for a lab's research code. They take every hyperparameter as a flag,
print a human line per epoch and end with one structured line that hyperjoule reads::

    HYPERJOULE_METRICS {"test_accuracy": 0.97, "test_loss": 0.1, "train_loss": 0.2, "epochs": 5}

Everything a reader needs to reproduce a run goes to ``config.json`` in the output
directory; per-epoch metrics go to ``history.json``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

EXAMPLES_VERSION = "1.0"
"""Version of the bundled examples as a whole; bump when any script's behaviour changes."""

NUM_CLASSES = 10
IMAGE_SIDE = 8
TEST_FRACTION = 0.25
SPLIT_SEED = 0  # fixed, so runs with different --seed values see the same test set
SGD_MOMENTUM = 0.9
METRICS_PREFIX = "HYPERJOULE_METRICS "


# --- flags ------------------------------------------------------------------------------


def _checked(cast: Callable[[str], Any], ok: Callable[[Any], bool], rule: str) -> Any:
    """Return an argparse ``type`` that reads a number and rejects it unless ``ok``."""

    def parse(text: str) -> Any:
        value = cast(text)
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = cast.__name__  # argparse's message: "invalid int value: 'x'"
    return parse


_POSITIVE_INT = _checked(int, lambda v: v >= 1, "at least 1")
_SEED = _checked(int, lambda v: v >= 0, "0 or more")
_POSITIVE_FLOAT = _checked(float, lambda v: v > 0, "a finite number above 0")
_NON_NEGATIVE_FLOAT = _checked(float, lambda v: v >= 0, "a finite number of 0 or more")
_PROBABILITY = _checked(float, lambda v: 0 <= v < 1, "in [0, 1)")


def build_parser(
    docstring: str,
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    dropout: float = 0.25,
) -> argparse.ArgumentParser:
    """Return the flags every digits script takes, with the script's own defaults.

    The help text is the first paragraph of the script's ``docstring``.
    """
    description = " ".join(docstring.split("\n\n")[0].split())
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", choices=["small", "large"], default="small")
    parser.add_argument("--epochs", type=_POSITIVE_INT, default=epochs)
    parser.add_argument("--lr", type=_POSITIVE_FLOAT, default=lr, help="learning rate")
    parser.add_argument("--batch-size", type=_POSITIVE_INT, default=batch_size)
    parser.add_argument("--weight-decay", type=_NON_NEGATIVE_FLOAT, default=0.0)
    parser.add_argument("--dropout", type=_PROBABILITY, default=dropout)
    parser.add_argument(
        "--seed",
        type=_SEED,
        default=1,
        help="controls weight initialisation, shuffling and dropout; the split is fixed",
    )
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CUDA when available, else CPU",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where config.json and history.json go "
        "(default: $HYPERJOULE_RUN_DIR, else the current directory)",
    )
    return parser


# --- environment --------------------------------------------------------------------------


def setup(parser: argparse.ArgumentParser, args: argparse.Namespace) -> torch.device:
    """Fix threads, seeds and determinism, and pick the device (exit 2 if CUDA is missing)."""
    threads = os.environ.get("OMP_NUM_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    cuda_ok = torch.cuda.is_available()
    if args.device == "cuda" and not cuda_ok:
        parser.error("--device cuda: no CUDA device is available (use --device auto or cpu)")
    use_cuda = args.device == "cuda" or (args.device == "auto" and cuda_ok)
    if use_cuda:
        # cuBLAS is only deterministic with a fixed workspace; must be set before it starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # Some CUDA kernels have no deterministic version; there a warning beats a crash.
    torch.use_deterministic_algorithms(True, warn_only=use_cuda)
    torch.manual_seed(args.seed)
    return torch.device("cuda" if use_cuda else "cpu")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def environment(device: torch.device, requested: str) -> dict[str, Any]:
    """Describe the software and hardware a run used."""
    cuda_devices = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "packages": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": _version("scikit-learn"),
            "hyperjoule": _version("hyperjoule"),
        },
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "device": {
            "requested": requested,
            "used": str(device),
            "name": cuda_devices[device.index or 0] if device.type == "cuda" else _cpu_name(),
            "cpu_name": _cpu_name(),
            "cuda_devices": cuda_devices,
        },
        "torch_num_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


# --- data --------------------------------------------------------------------------------


@dataclass
class Digits:
    """The digits images split into train and test tensors on one device.

    Images are ``(n, 8, 8)`` floats in [0, 1]; labels are int64 class indices.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


def _read_digits() -> tuple[np.ndarray, np.ndarray, str]:
    """Return scikit-learn's digits images, labels and where they were read from.

    Reads the CSV that ``sklearn.datasets.load_digits`` parses, without importing
    scikit-learn: its import takes seconds, several times the training itself.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as f:
                table = np.loadtxt(f, delimiter=",")
            images = table[:, :-1].reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
            return images, table[:, -1].astype(np.int64), str(path)
    from sklearn.datasets import load_digits  # the layout changed: the slow, sure way

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64), "sklearn.datasets.load_digits()"


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, test) indices: a stratified split fixed by ``SPLIT_SEED``."""
    rng = np.random.RandomState(SPLIT_SEED)  # legacy stream: the same on every numpy
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(TEST_FRACTION * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits_split(device: torch.device) -> Digits:
    """Load the digits data, split it and move it to ``device`` (it is 0.5 MB)."""
    images, labels, source = _read_digits()
    train_idx, test_idx = split_indices(labels)
    x = torch.from_numpy(images / 16.0).float()  # pixel values are 0..16
    y = torch.from_numpy(labels)
    info = {
        "name": "digits (UCI optical recognition of handwritten digits, via scikit-learn)",
        "loader": "sklearn.datasets.load_digits",
        "source": source,
        "samples": int(len(labels)),
        "image_shape": [IMAGE_SIDE, IMAGE_SIDE],
        "classes": NUM_CLASSES,
        "preprocessing": "pixel values divided by 16 to lie in [0, 1]",
        "train_size": int(len(train_idx)),
        "test_size": int(len(test_idx)),
        "split": {
            "method": "stratified per class, numpy RandomState permutation",
            "test_fraction": TEST_FRACTION,
            "split_seed": SPLIT_SEED,
            "depends_on_seed": False,
            "test_indices_sha256": hashlib.sha256(test_idx.astype("<i8").tobytes()).hexdigest(),
        },
    }
    return Digits(
        x[train_idx].to(device),
        y[train_idx].to(device),
        x[test_idx].to(device),
        y[test_idx].to(device),
        info,
    )


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield index batches of a fresh permutation drawn from ``generator`` (on the CPU)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


# --- training ----------------------------------------------------------------------------


def make_optimizer(
    params: Iterable[nn.Parameter], args: argparse.Namespace
) -> torch.optim.Optimizer:
    """Return the optimizer the flags ask for."""
    if args.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=args.lr, momentum=SGD_MOMENTUM, weight_decay=args.weight_decay
        )
    return torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)


def describe_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Return the optimizer's class and every setting that is plain data."""
    settings = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in optimizer.defaults.items()
        if isinstance(v, (bool, int, float, str, tuple, type(None)))
    }
    return {"class": f"torch.optim.{type(optimizer).__name__}", **settings}


def describe_model(name: str, model: nn.Module) -> dict[str, Any]:
    """Return the model's size name, class, parameter count and layer listing."""
    return {
        "name": name,
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": str(model),
    }


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so epoch durations are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_classifier(model: nn.Module, data: Digits) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy as a fraction) of ``model`` on the test set."""
    model.eval()
    logits = model(data.x_test)
    loss = nn.functional.cross_entropy(logits, data.y_test).item()
    # Counted exactly, so 412 of 450 reads 0.915555..., not a float32 rounding of it.
    accuracy = (logits.argmax(dim=1) == data.y_test).sum().item() / len(data.y_test)
    return loss, accuracy
