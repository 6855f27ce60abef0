"""A forward-forward network on the 8x8 digits, in the manner of pytorch/examples
``mnist_forward_forward`` (Hinton, 2022, "The Forward-Forward Algorithm").

No error is propagated between layers. Each fully connected layer has its own optimizer
and a local objective: high "goodness" (summed squared activity) for positive data (an
image with its true label embedded in the input) and low goodness for negative data
(the same image with a wrong label). A digit is classified by embedding each of the ten
labels in turn and picking the one with the highest goodness summed over the layers.

Unlike the MNIST example, which overwrites the first 10 of 784 pixels with the one-hot
label, the label is appended to the 64 pixels here: on 8x8 images every pixel counts.
Each layer learns from minibatches and all layers train together, one batch at a time,
so ``--epochs`` means what it means for the other scripts.

    python train_ff.py --model small --epochs 10 --lr 0.03 --batch-size 64
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from _common import (
    IMAGE_SIDE,
    NUM_CLASSES,
    Digits,
    build_parser,
    describe_model,
    describe_optimizer,
    make_optimizer,
    shuffled_batches,
    synchronize,
)
from _output import RunOutput, run_script
from torch import nn

SCRIPT_VERSION = "1.0"

SIZES = {"small": (128, 128), "large": (256, 256, 256)}  # widths of the FF layers
# Goodness separating positive from negative data. Goodness is the paper's sum of squares,
# not the example's mean: the mean's gradients are 1/width as large, which left SGD and any
# L2 weight decay with nothing to act on. 3.0 lets labels matter within an epoch or two.
THRESHOLD = 3.0
LABEL_VALUE = 1.0  # the embedded one-hot label's "on" value: the brightest pixel


class FFLayer(nn.Module):
    """A ReLU layer trained on its own: normalise the input, then linear, then ReLU."""

    def __init__(self, in_features: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only the direction of the previous activity passes on; its length is the
        # previous layer's goodness, which would otherwise give the answer away.
        x = x / (x.norm(dim=1, keepdim=True) + 1e-4)
        return torch.relu(self.linear(self.dropout(x)))


def goodness(activity: torch.Tensor) -> torch.Tensor:
    """Summed squared activity of each sample."""
    return activity.pow(2).sum(dim=1)


class FFNet(nn.Module):
    """A stack of :class:`FFLayer` s and the label embedding they all see."""

    def __init__(self, widths: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        sizes = (IMAGE_SIDE * IMAGE_SIDE + NUM_CLASSES, *widths)
        self.layers = nn.ModuleList(
            FFLayer(i, o, dropout) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )

    @staticmethod
    def embed(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Append the one-hot ``labels`` to the flattened ``images``."""
        one_hot = nn.functional.one_hot(labels, NUM_CLASSES).to(images.dtype) * LABEL_VALUE
        return torch.cat([images.flatten(1), one_hot], dim=1)

    def label_goodness(self, images: torch.Tensor) -> torch.Tensor:
        """Return each layer's goodness with each label embedded: shape (layers, n, 10)."""
        per_label = []
        for label in range(NUM_CLASSES):
            h = self.embed(images, torch.full((len(images),), label, device=images.device))
            per_layer = []
            for layer in self.layers:
                h = layer(h)
                per_layer.append(goodness(h))
            per_label.append(torch.stack(per_layer))
        return torch.stack(per_label, dim=2)


def ff_loss(h_pos: torch.Tensor, h_neg: torch.Tensor) -> torch.Tensor:
    """Logistic loss pushing positive goodness above THRESHOLD and negative below it."""
    margins = torch.cat([THRESHOLD - goodness(h_pos), goodness(h_neg) - THRESHOLD])
    return nn.functional.softplus(margins).mean()


@torch.no_grad()
def evaluate(model: FFNet, data: Digits) -> tuple[float, float]:
    """Return (forward-forward loss, accuracy as a fraction) on the test set.

    The loss is the training objective with every wrong label as negative data, positives
    and negatives weighted equally as in training, so it compares with ``train_loss``.
    """
    model.eval()
    layer_goodness = model.label_goodness(data.x_test)  # (layers, n, labels)
    true = nn.functional.one_hot(data.y_test, NUM_CLASSES).bool()
    pos = nn.functional.softplus(THRESHOLD - layer_goodness[:, true])
    neg = nn.functional.softplus(layer_goodness[:, ~true] - THRESHOLD)
    loss = 0.5 * (pos.mean() + neg.mean()).item()
    predicted = layer_goodness.sum(dim=0).argmax(dim=1)
    accuracy = (predicted == data.y_test).sum().item() / len(data.y_test)
    return loss, accuracy


def train(
    model: FFNet, data: Digits, args: argparse.Namespace, device: torch.device, output: RunOutput
) -> None:
    optimizers = [make_optimizer(layer.parameters(), args) for layer in model.layers]
    output.write_config(
        model={
            **describe_model(args.model, model),
            "threshold": THRESHOLD,
            "label_embedding": f"one-hot ({LABEL_VALUE:g}) appended to the 64 pixels",
        },
        loss="forward-forward, per layer: mean of softplus(threshold - goodness(positive)) "
        "and softplus(goodness(negative) - threshold), goodness = summed squared ReLU "
        "activity; train_loss averages the layers over the epoch's batches; test_loss is "
        "the same on the test set with all nine wrong labels as negatives",
        optimizer={**describe_optimizer(optimizers[0]), "one_per_layer": True},
        scheduler=None,
        negative_data="the same image with a label drawn uniformly from the 9 wrong ones",
    )
    generator = torch.Generator().manual_seed(args.seed)
    n_train = len(data.y_train)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        total = torch.zeros((), device=device)
        for idx in shuffled_batches(n_train, args.batch_size, generator):
            wrong = torch.randint(1, NUM_CLASSES, (len(idx),), generator=generator)
            idx = idx.to(device)
            images, labels = data.x_train[idx], data.y_train[idx]
            h_pos = model.embed(images, labels)
            h_neg = model.embed(images, (labels + wrong.to(device)) % NUM_CLASSES)
            for layer, optimizer in zip(model.layers, optimizers, strict=True):
                h_pos, h_neg = layer(h_pos), layer(h_neg)
                loss = ff_loss(h_pos, h_neg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # The next layer learns from this one's output, not through it.
                h_pos, h_neg = h_pos.detach(), h_neg.detach()
                total += loss.detach() * len(idx) / len(model.layers)
        train_loss = total.item() / n_train
        test_loss, accuracy = evaluate(model, data)
        synchronize(device)
        output.record_epoch(epoch, train_loss, test_loss, accuracy, time.perf_counter() - start)
    output.finish()


def make_parser() -> argparse.ArgumentParser:
    """Return this script's flags with its defaults."""
    return build_parser(__doc__ or "", epochs=10, lr=3e-2, dropout=0.0)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        "digits-ff",
        Path(__file__).resolve(),
        SCRIPT_VERSION,
        make_parser(),
        lambda a: FFNet(SIZES[a.model], dropout=a.dropout),
        train,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
