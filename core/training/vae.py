"""Training loop for the 2-D VAE, with latent snapshots of a fixed set of digits as it learns."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from core.errors import BadInputError
from core.models.vae import VAE, vae_loss
from core.training.step import optimizer_step


@dataclass(frozen=True, kw_only=True)
class VAETrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the true ELBO
    seed: int = 0
    log_every: int = 10
    snapshot_every: int = 50  # steps between latent snapshots of the fixed digits

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 500 and 1 <= self.batch_size <= 4096 and 0 < self.lr <= 1 and self.beta >= 0):
            raise BadInputError("VAE settings: epochs 1-500, batch 1-4096, learning rate in (0, 1], beta >= 0.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total_steps(self, images: int) -> int:
        """Optimizer steps over `images` training images: whole batches only, at least one a pass."""
        return self.epochs * max(1, images // self.batch_size)


@dataclass
class LatentSnapshots:
    """Encoder means of the same digits at several steps: steps [S], means [S, N, 2], labels [N]."""

    steps: list[int]
    means: list[torch.Tensor]
    labels: torch.Tensor

    def as_tensors(self) -> dict[str, torch.Tensor]:
        return {"steps": torch.tensor(self.steps), "means": torch.stack(self.means), "labels": self.labels}


def train_vae(
    vae: VAE,
    images: torch.Tensor,
    config: VAETrainConfig,
    snapshot_images: torch.Tensor,
    snapshot_labels: torch.Tensor,
    callback: Callable[[dict[str, float], LatentSnapshots], None] | None = None,
) -> tuple[list[dict[str, float]], LatentSnapshots]:
    """Train on `images` (float in [0, 1], [N, 1, 28, 28]). `callback(record, snapshots)` runs at each log.

    Returns the metrics records (step, loss, reconstruction, kl, lr, seconds) and the latent snapshots. A loss
    that is not finite stops the run with BadInputError, the VAE keeping the last good step's weights.
    """
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr)
    snaps = LatentSnapshots(steps=[], means=[], labels=snapshot_labels.clone())
    records: list[dict[str, float]] = []
    steps_per_epoch = max(1, len(images) // config.batch_size)
    total = config.total_steps(len(images))
    step, seconds = 0, 0.0

    def snapshot() -> None:
        vae.eval()
        with torch.no_grad():
            snaps.steps.append(step)
            snaps.means.append(vae.encode(snapshot_images)[0].detach().clone())
        vae.train()

    vae.train()
    snapshot()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=g)
        for k in range(steps_per_epoch):
            tic = time.perf_counter()
            x = images[order[k * config.batch_size : (k + 1) * config.batch_size]]
            logits, mean, logvar = vae(x, generator=g)
            loss, recon, kl = vae_loss(logits, x, mean, logvar, config.beta)
            optimizer_step(loss, opt, step + 1)
            step += 1
            seconds += time.perf_counter() - tic
            if step % config.snapshot_every == 0:
                snapshot()
            if step % config.log_every == 0 or step == total:
                record = {
                    "step": step,
                    "loss": loss.item(),
                    "reconstruction": recon.item(),
                    "kl": kl.item(),
                    "lr": config.lr,
                    "seconds": round(seconds, 4),
                }
                records.append(record)
                if callback is not None:
                    callback(record, snaps)
    if snaps.steps[-1] != step:
        snapshot()
    vae.eval()
    return records, snaps
