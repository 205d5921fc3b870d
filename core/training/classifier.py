"""Training loop for the metric classifier, with random shifts so that it also reads imperfect samples.

The learning rate follows a one-cycle schedule (core/training/lr.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn import functional as F

from core.errors import BadInputError
from core.training.lr import LRSchedule
from core.training.step import optimizer_step


@dataclass(frozen=True, kw_only=True)
class ClassifierTrainConfig:
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    max_shift: int = 2  # random translation, pixels
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 500 and 1 <= self.batch_size <= 4096 and 0 < self.lr <= 1):
            raise BadInputError("Classifier settings: epochs 1-500, batch 1-4096, learning rate in (0, 1].")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to max_shift pixels in x and y, filling with the background (-1)."""
    if max_shift == 0:
        return x
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=generator)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    correct = sum(
        (model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum().item()
        for i in range(0, len(images), batch)
    )
    return correct / max(1, len(images))


def train_classifier(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierTrainConfig,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Cross-entropy training on images in [-1, 1] [N, 1, 28, 28] with integer labels; returns the records.

    A loss that is not finite stops the run with BadInputError, the model keeping the last good step's weights.
    """
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    total = config.epochs * max(1, len(images) // config.batch_size)
    schedule = LRSchedule(peak=config.lr, shape="one_cycle")
    records: list[dict[str, float]] = []
    step, seconds = 0, 0.0
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=g)
        for k in range(max(1, len(images) // config.batch_size)):
            tic = time.perf_counter()
            schedule.apply(opt, step, length=total)
            idx = order[k * config.batch_size : (k + 1) * config.batch_size]
            logits = model(random_shift(images[idx], config.max_shift, g))
            loss = F.cross_entropy(logits, labels[idx])
            optimizer_step(loss, opt, step + 1)
            step += 1
            seconds += time.perf_counter() - tic
            if step % config.log_every == 0:
                acc = (logits.argmax(1) == labels[idx]).float().mean().item()
                lr = schedule.lr(step, length=total)  # the next step's rate, as torch's get_last_lr() reports it
                record = {
                    "step": step,
                    "loss": loss.item(),
                    "train_accuracy": acc,
                    "lr": lr,
                    "seconds": round(seconds, 4),
                }
                records.append(record)
                if callback is not None:
                    callback(record)
    model.eval()
    return records
