"""UNet2DModel presets for the bundled MNIST models, sized for training on a laptop CPU.

A 28x28 grey digit goes through three resolutions (28, 14, 7) with self-attention only at 7x7, where it
is cheap; most of a UNet's cost is its first, full-resolution level, so that level is kept narrow.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MNIST_UNET: dict[str, Any] = {
    "sample_size": 28,
    "in_channels": 1,
    "out_channels": 1,
    "layers_per_block": 1,
    "block_out_channels": [16, 32, 64],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": 16,
}


def unet_config(num_classes: int | None = None, **overrides: Any) -> dict[str, Any]:
    """The MNIST preset; with classes, one extra embedding (index num_classes) means "no class" for CFG."""
    config = {**MNIST_UNET, **overrides}
    if num_classes:
        config["num_class_embeds"] = num_classes + 1
    return config


def build_unet(config: dict[str, Any]) -> nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(**config)


class SampleOnly(nn.Module):
    """Wraps a diffusers UNet2DModel so that forward returns the tensor, not an output object (for training)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, t, class_labels=class_labels).sample
