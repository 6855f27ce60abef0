"""A small CNN on the 8x8 digits images, in the manner of pytorch/examples ``mnist``.

Two 3x3 convolutions, max pooling, dropout and two fully connected layers; the 28x28
MNIST images become scikit-learn's 8x8 digits, so a run takes seconds on a CPU.

    python train_cnn.py --model small --epochs 5 --lr 0.003 --batch-size 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _common import (
    IMAGE_SIDE,
    NUM_CLASSES,
    build_parser,
)
from _output import run_script
from _train import train_classifier
from torch import nn

SCRIPT_VERSION = "1.0"

SIZES = {"small": (16, 32, 64), "large": (32, 64, 128)}  # conv1, conv2 channels; fc width


class DigitsCNN(nn.Module):
    """conv-relu, conv-relu, max-pool, dropout, fc-relu, dropout, fc (logits)."""

    def __init__(self, conv1: int, conv2: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, conv1, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.dropout1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(conv2 * (IMAGE_SIDE // 2) ** 2, hidden)
        self.dropout2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.unsqueeze(1)  # (n, 8, 8) -> (n, 1, 8, 8)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.dropout1(self.pool(x)).flatten(1)
        x = self.dropout2(torch.relu(self.fc1(x)))
        logits: torch.Tensor = self.fc2(x)
        return logits


def make_parser() -> argparse.ArgumentParser:
    """Return this script's flags with its defaults."""
    return build_parser(__doc__ or "", epochs=5, lr=3e-3, dropout=0.25)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        "digits-cnn",
        Path(__file__).resolve(),
        SCRIPT_VERSION,
        make_parser(),
        lambda a: DigitsCNN(*SIZES[a.model], dropout=a.dropout),
        train_classifier,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
