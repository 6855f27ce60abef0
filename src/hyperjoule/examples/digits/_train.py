"""The training loop shared by the bundled classifiers (CNN and RNN)."""

from __future__ import annotations

import argparse
import time

import torch
from _common import (
    Digits,
    describe_model,
    describe_optimizer,
    evaluate_classifier,
    make_optimizer,
    shuffled_batches,
    synchronize,
)
from _output import RunOutput
from torch import nn


def train_classifier(
    model: nn.Module,
    data: Digits,
    args: argparse.Namespace,
    device: torch.device,
    output: RunOutput,
) -> None:
    """Train ``model`` with cross-entropy, evaluating and recording after every epoch."""
    optimizer = make_optimizer(model.parameters(), args)
    output.write_config(
        model=describe_model(args.model, model),
        loss="cross-entropy (mean over the batch); test_loss is the same on the test set",
        optimizer=describe_optimizer(optimizer),
        scheduler=None,
    )
    generator = torch.Generator().manual_seed(args.seed)
    n_train = len(data.y_train)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        total = torch.zeros((), device=device)
        for idx in shuffled_batches(n_train, args.batch_size, generator):
            idx = idx.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        train_loss = total.item() / n_train
        test_loss, accuracy = evaluate_classifier(model, data)
        synchronize(device)
        output.record_epoch(epoch, train_loss, test_loss, accuracy, time.perf_counter() - start)
    output.finish()
