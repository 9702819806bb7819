"""Realism score: a classifier two-sample test between real and generated faces.

A small CNN learns to tell real validation faces from a system's outputs on one half of
the items and is scored on the other half. Held-out accuracy 0.5 means the two sets are
indistinguishable to it; 1.0 means the fakes are trivially fake (Lopez-Paz & Oquab,
"Revisiting classifier two-sample tests", ICLR 2017). Every system gets the same
classifier, budget, split and seed, so the accuracies compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RealismConfig:
    """Budget of the two-sample test (the same for every system compared)."""

    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0


def _classifier() -> nn.Module:
    # Four stride-2 convolutions and a linear read-out: enough to spot blur, colour
    # casts and artefacts at 96 px, small enough to train in seconds on a CPU.
    layers, cin = [], 3
    for cout in (32, 64, 128, 128):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout),
                   nn.LeakyReLU(0.2, inplace=True)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def two_sample_accuracy(real: np.ndarray, fake: np.ndarray,
                        config: RealismConfig = RealismConfig()) -> float:
    """Held-out accuracy of a CNN telling `real` from `fake` ((N, H, W, 3) uint8 each).

    Items are paired by index: the classifier trains on the real and fake images of a
    seeded half of the items and is tested on the other half, so it never sees a test
    item's real face or its generated one.
    """
    if len(real) != len(fake) or len(real) < 4:
        raise ValueError("The two-sample test needs equal sets of at least 4 images.")
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(real), generator=generator).numpy()
    train_items, test_items = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])

    def labelled(items):
        images = torch.cat([_to_tensor(real[items]), _to_tensor(fake[items])])
        labels = torch.cat([torch.ones(len(items)), torch.zeros(len(items))])
        return images, labels

    train_x, train_y = labelled(train_items)
    test_x, test_y = labelled(test_items)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = _classifier()
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        model.train()
        for _ in range(config.epochs):
            for batch in torch.randperm(len(train_x), generator=generator).split(
                    config.batch_size):
                x = train_x[batch]
                if torch.rand(1, generator=generator).item() < 0.5:
                    x = x.flip(3)  # mirror: neither set should win on pose
                loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], train_y[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x)[:, 0] for x in test_x.split(256)])
    return float(((logits > 0).float() == test_y).float().mean())
