"""Small real models and data for tests."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel


def tiny_unet(seed: int = 0, channels: int = 3, size: int = 8, num_class_embeds: int | None = None) -> UNet2DModel:
    """A small diffusers UNet2DModel with fixed random weights, in eval mode with gradients off."""
    torch.manual_seed(seed)
    model = UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        num_class_embeds=num_class_embeds,
    )
    return model.eval().requires_grad_(False)


class NearlyGaussianEps(torch.nn.Module):
    """An epsilon model with outputs of a sane size: the exact noise predictor for N(0, I) data,
    E[eps | x_t] = sqrt(1 - ab_t) x_t, plus a small fixed random UNet so that the output depends on t and
    x in a nonlinear way. Samples land in the range of real data instead of blowing up."""

    def __init__(self, unet: UNet2DModel, alphas_cumprod: torch.Tensor, mix: float = 0.3) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float32))
        self.mix = mix

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1).expand(len(x_t))
        lo = t.floor().long().clamp(0, len(self.alphas_cumprod) - 1)
        hi = (lo + 1).clamp(max=len(self.alphas_cumprod) - 1)
        w = (t - lo).reshape(-1, 1, 1, 1)
        ab = (1 - w) * self.alphas_cumprod[lo].reshape(-1, 1, 1, 1) + w * self.alphas_cumprod[hi].reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x_t + self.mix * self.unet(x_t, t, class_labels=class_labels).sample


def tiny_pixel_recipe(name: str, *, schedule: str, steps: int, batch_size: int, lr: float, prediction_type: str,
                      sample_every: int) -> str:  # fmt: skip
    """A `python -m zoo train` recipe for a class-conditional UNet of a few thousand parameters on MNIST."""
    return f"""
name = "{name}"
kind = "pixel"
title = "{name}"
description = "test"
data = "mnist"
num_classes = 10
cond_dropout = 0.2

[model]
block_out_channels = [8, 16, 16]
attention_head_dim = 8

[schedule]
kind = "{schedule}"
steps = 100

[train]
steps = {steps}
batch_size = {batch_size}
lr = {lr}
warmup_steps = 2
ema_decay = 0.9
prediction_type = "{prediction_type}"
seed = 0
log_every = 2
sample_every = {sample_every}
"""
