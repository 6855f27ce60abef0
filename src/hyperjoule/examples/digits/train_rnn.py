"""An LSTM reading each 8x8 digit image row by row, in the manner of pytorch/examples
``mnist_rnn``.

Each image is a sequence of 8 rows of 8 pixels; the LSTM's last output goes through
dropout to a linear classifier.

    python train_rnn.py --model small --epochs 5 --lr 0.02 --batch-size 32
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

SIZES = {"small": (32, 1), "large": (64, 2)}  # LSTM hidden size, layers


class DigitsRNN(nn.Module):
    """LSTM over image rows, then dropout and a linear layer on the last time step."""

    def __init__(self, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=IMAGE_SIDE,
            hidden_size=hidden,
            num_layers=layers,
            batch_first=True,
            # Between stacked layers only; PyTorch warns when it is set for one layer.
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(images)  # (n, rows, hidden)
        logits: torch.Tensor = self.fc(self.dropout(outputs[:, -1]))
        return logits


def make_parser() -> argparse.ArgumentParser:
    """Return this script's flags with its defaults."""
    return build_parser(__doc__ or "", epochs=5, lr=2e-2, batch_size=32, dropout=0.1)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        "digits-rnn",
        Path(__file__).resolve(),
        SCRIPT_VERSION,
        make_parser(),
        lambda a: DigitsRNN(*SIZES[a.model], dropout=a.dropout),
        train_classifier,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
