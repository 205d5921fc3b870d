"""A small LeNet-style digit classifier, used only as a metric network (accuracy of samples, FD-LeNet).

Two 5x5 convolutions with max-pooling, then two linear layers; the 128 features before the last layer
are the "penultimate features" in which the Frechet distance FD-LeNet is measured (Heusel et al. 2017
define FID with Inception features; this is the same distance in a small MNIST network's features).
"""

from __future__ import annotations

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn


class LeNet(nn.Module, PyTorchModelHubMixin):
    def __init__(self, num_classes: int = 10, channels: int = 1, width: int = 32, features: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(2 * width * 49, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x in [-1, 1], [B, 1, 28, 28] -> penultimate features [B, 128]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [B, num_classes]."""
        return self.head(self.body(x))
