"""Small real models and data for tests."""

from __future__ import annotations

import base64
import json

import numpy as np
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


def tiny_pixel_recipe(
    name: str, *, schedule: str, steps: int, batch_size: int, lr: float, prediction_type: str, sample_every: int
) -> str:
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


def gaussian_cloud(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """n standard normal 2-D points (float64), shifted by `shift`."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def three_clusters(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 2-D points in three labelled, elongated clusters, and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0, -1.0], [-2.0, 1.5], [0.0, 3.0]])
    labels = np.arange(n) % 3
    return centres[labels] + rng.normal(scale=[0.4, 0.2], size=(n, 2)), labels


def write_long_log(folder, n=100_000, broken_tail=True) -> None:
    """A run folder with n metrics lines (one loss spike) and, by default, a truncated last line."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"recipe": "long", "train": {"lr": 0.001, "seed": 1}}))
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(n) / 20_000) + 0.05 * rng.random(n)
    loss[min(54_321, n - 1)] = 25.0  # one spike that a downsampled chart must still show
    with open(folder / "metrics.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"step": i + 1, "loss": float(loss[i]), "lr": 0.001, "seconds": i * 0.01}) + "\n")
        if broken_tail:
            f.write('{"step": 100001, "loss": 0.0')


def plotly_array(value) -> np.ndarray:
    """A plotly array from its JSON: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(k) for k in str(value.get("shape", len(flat))).split(",")])
    return np.array(value, dtype=float)


def tiny_unconditional_recipe(name: str, **settings) -> str:
    """`tiny_pixel_recipe` without its classes: an unconditional UNet (no class embedding, no label dropout)."""
    recipe = tiny_pixel_recipe(name, **settings)
    classes = "num_classes = 10\ncond_dropout = 0.2\n"
    assert classes in recipe
    return recipe.replace(classes, "")
