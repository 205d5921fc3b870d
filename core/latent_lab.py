"""Diffusion in a 2-D VAE latent plane: a class-conditional denoiser on standardised latents, trained in
seconds or loaded from the zoo, and sampled with every step's position kept so its path can be drawn.

The denoiser learns z_std = (z - mean) / std, so the noise it starts from matches the data's scale.
Paths are kept in VP coordinates y = x / sqrt(1 + sigma^2) and mapped back to latent units
(y * std + mean): they start as unit-scale noise around the latent cloud and end on the samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.denoisers import ClassifierFreeGuidance, Denoiser, DiscreteTimeDenoiser
from core.errors import BadInputError
from core.models.mlp import MLPConfig, build_mlp
from core.samplers import Step, get_sampler, sample
from core.schedules import DEFAULT_MAX_SIGMA, NoiseSchedule, make_schedule
from core.threads import torch_threads
from core.training import DiffusionTrainer, TrainConfig, labelled_batches

NUM_CLASSES = 10  # label 10 is "no class"
MAX_SAMPLES = 500
MAX_STEPS = 200
MAX_TRAIN_STEPS = 20_000


@dataclass(frozen=True)
class LatentDiffusion:
    """A class-conditional denoiser on a VAE's standardised latents, with that standardisation."""

    name: str
    denoiser: Denoiser  # D(x, sigma, class_labels=...)
    schedule: NoiseSchedule
    mean: torch.Tensor  # [2] latent mean of the training digits
    std: torch.Tensor  # [2]
    null_label: int = NUM_CLASSES

    def conditioned(self, label: int | None, n: int, scale: float) -> Denoiser:
        """D for n samples of class `label` under guidance `scale`; label None: the unconditional model."""
        if label is None:
            labels = torch.full((n,), self.null_label)
            return lambda x, sigma: self.denoiser(x, sigma, class_labels=labels)
        labels = torch.full((n,), int(label))
        guided = ClassifierFreeGuidance(self.denoiser, scale, self.null_label)
        return lambda x, sigma: guided(x, sigma, class_labels=labels)

    def to_latent(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


@dataclass(frozen=True)
class LatentTrainSettings:
    steps: int = 2000
    width: int = 128
    depth: int = 3
    lr: float = 3e-3
    batch_size: int = 512
    cond_dropout: float = 0.15  # share of labels replaced by "no class", so guidance has an unconditional model
    seed: int = 0


class LatentTrainer:
    """Trains a fresh class-conditional MLP denoiser on latent points (cosine schedule, epsilon)."""

    def __init__(self, z: np.ndarray, labels: np.ndarray, settings: LatentTrainSettings, name: str) -> None:
        if not 0 <= settings.cond_dropout < 1:
            raise BadInputError("The label dropout must lie in [0, 1).")
        z_t = torch.as_tensor(z, dtype=torch.float32)
        self.name, self.settings = name, settings
        self.mean, self.std = z_t.mean(0), z_t.std(0).clamp_min(1e-6)
        self.schedule = make_schedule("cosine", 1000)
        config = MLPConfig(dim=2, width=settings.width, depth=settings.depth, num_classes=NUM_CLASSES)
        train = TrainConfig(
            batch_size=settings.batch_size,
            lr=settings.lr,
            ema_decay=0.995,
            prediction_type="epsilon",
            seed=settings.seed,
            lr_schedule="cosine",
            warmup_steps=100,
        )
        batches = labelled_batches(
            (z_t - self.mean) / self.std, torch.tensor(labels), NUM_CLASSES, settings.cond_dropout
        )
        self.trainer = DiffusionTrainer(build_mlp(config, settings.seed), self.schedule, train, batches)
        self.record: dict[str, Any] = {
            "name": name,
            "kind": "latent",
            "config": {"settings": asdict(settings), "model": config.to_dict(), "train": train.to_dict()},
            "metrics": self.trainer.metrics,
        }

    def train(self, callback: Callable[[DiffusionTrainer], None] | None = None, every: int = 20) -> None:
        if self.trainer.step + self.settings.steps > MAX_TRAIN_STEPS:
            raise BadInputError(f"A latent model trains for at most {MAX_TRAIN_STEPS:,} steps.")
        with torch_threads(1):  # a small MLP: one thread is as fast and is not stalled by a busy core
            self.trainer.train(self.settings.steps, callback, every)

    def model(self) -> LatentDiffusion:
        denoiser = DiscreteTimeDenoiser(self.trainer.sampling_model, self.schedule, "epsilon", NUM_CLASSES)
        return LatentDiffusion(self.name, denoiser, self.schedule, self.mean, self.std)


@dataclass(frozen=True, eq=False)
class LatentPaths:
    samples: torch.Tensor  # [n, 2] final latent points
    path: torch.Tensor  # [F, n, 2] VP states in latent units, from noise to the samples
    sigmas: list[float]  # [F] noise level of each frame (0 for the last)
    seconds: float
    label: dict[str, Any]


def sampling_sigmas(schedule: NoiseSchedule, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """The grid the latent page samples on: starting no higher than DEFAULT_MAX_SIGMA (the cosine
    schedule's last steps reach sigma ~ 600, where a float32 state is all noise)."""
    return schedule.sampling_sigmas(
        min(steps, schedule.usable_steps(DEFAULT_MAX_SIGMA)), spacing, max_sigma=DEFAULT_MAX_SIGMA
    ).float()


def sample_paths(
    model: LatentDiffusion,
    sampler: str,
    steps: int,
    n: int,
    seed: int = 0,
    label: int | None = None,
    scale: float = 3.0,
    on_frame: Callable[[int, torch.Tensor], None] | None = None,
    **options: float | str,
) -> LatentPaths:
    """n samples (class `label` at guidance `scale`, or unconditional), with every step's position.

    on_frame(index, path_so_far [f, n, 2]) runs after each step, for live drawing."""
    get_sampler(sampler)
    if not 1 <= n <= MAX_SAMPLES or not 1 <= steps <= MAX_STEPS:
        raise BadInputError(f"Sample 1 to {MAX_SAMPLES} latent points in 1 to {MAX_STEPS} steps.")
    if label is not None and not 0 <= label < NUM_CLASSES:
        raise BadInputError(f"The class must be 0-{NUM_CLASSES - 1} (or none).")
    if not 0 <= scale <= 20:
        raise BadInputError("The guidance scale must lie in [0, 20].")
    sigmas = sampling_sigmas(model.schedule, steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g) * sigmas[0]
    frames: list[torch.Tensor] = []

    def record(step: Step) -> None:
        frames.append(model.to_latent(step.x / (1 + step.sigma**2) ** 0.5))
        if on_frame is not None:
            on_frame(step.index, torch.stack(frames))

    tic = time.perf_counter()
    with torch_threads(1):
        out = sample(sampler, model.conditioned(label, n, scale), x, sigmas, generator=g, callback=record, **options)
    final = model.to_latent(out)
    frames.append(final)
    if on_frame is not None:
        on_frame(len(frames) - 1, torch.stack(frames))
    label_info = {"sampler": sampler, "steps": len(sigmas) - 1, "n": n, "seed": seed, "class": label, "scale": scale}
    return LatentPaths(final, torch.stack(frames), [float(s) for s in sigmas], time.perf_counter() - tic, label_info)
