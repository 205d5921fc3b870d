"""Latent MNIST's logic, free of any UI: a 2-D VAE's latent plane (digits encoded to points, points or a whole
grid of them decoded to digits), and diffusion in that plane (a class-conditional denoiser on standardised
latents, trained in seconds or loaded from the zoo, sampled with every step's position kept so that its path
can be drawn).

Images are uint8 [N, 1, 28, 28] (0 black .. 255 white) on the way in and out; the VAE itself works on
intensities in [0, 1]. Encoding uses the mean of q(z | x): the point the encoder believes in.
The denoiser learns z_std = (z - mean) / std, so the noise it starts from matches the data's scale. Paths are
kept in VP coordinates y = x / sqrt(1 + sigma^2) and mapped back to latent units (y * std + mean): they start
as unit-scale noise around the latent cloud and end on the samples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion.denoisers import Denoiser, model_denoiser, with_labels
from core.diffusion.guidance import Guidance
from core.diffusion.samplers import get_sampler, sample
from core.diffusion.schedules import NoiseSchedule, make_schedule
from core.diffusion.trajectory import PathRecorder
from core.errors import BadInputError
from core.models.mlp import MLPConfig, build_mlp, parameter_count
from core.models.vae import VAE
from core.runs.record import Run
from core.training import budget
from core.training.diffusion import DiffusionTrainer, TrainConfig, labelled_batches
from core.training.snapshots import WeightSnapshots
from core.training.vae import VAETrainConfig

NUM_CLASSES = 10  # label 10 is "no class"
MAX_SAMPLES = 500
MAX_STEPS = 200
MAX_TRAIN_STEPS = 20_000
MAX_MANIFOLD = 30  # digits per side of the manifold grid
MAX_DECODE = 5_000
LATENT_OBJECTIVES = {"epsilon": "cosine", "flow_prediction": "flow"}  # objective -> the schedule it trains on


def vae_training_seconds(config: VAETrainConfig, images: int, parameters: int) -> float:
    """About how long `train_vae` takes on this server for a dense VAE of `parameters` (core/training/budget.py)."""
    return budget.estimate_seconds(config.total_steps(images), config.batch_size, parameters)


# ---- the latent plane ------------------------------------------------------------------------------------


@torch.no_grad()
def encode_means(vae: VAE, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Latent means [N, 2] of uint8 digits [N, 1, 28, 28]."""
    out = []
    for start in range(0, len(images), batch):
        x = torch.tensor(images[start : start + batch], dtype=torch.float32) / 255
        out.append(vae.encode(x)[0].double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


@torch.no_grad()
def decode_points(vae: VAE, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 digits [N, 28, 28] for latent points [N, 2]."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32))
    if z.ndim != 2 or z.shape[1] != vae.latent_dim or len(z) > MAX_DECODE:
        raise BadInputError(f"Decode 1 to {MAX_DECODE:,} points of dimension {vae.latent_dim}.")
    images = vae.decode(z)[:, 0]
    return (images * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def manifold_axes(
    n: int, spacing: str, extent: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates (xs, ys), each [n], increasing.

    "linear": evenly over `extent` ((lo, hi) per axis). "gaussian": the prior's quantiles,
    Phi^-1 of (k + 1/2) / n: evenly spaced in probability under N(0, I), so each cell holds the same prior
    mass and the dense centre gets more digits (Kingma & Welling's manifold figures)."""
    if not 2 <= n <= MAX_MANIFOLD:
        raise BadInputError(f"The manifold grid has 2 to {MAX_MANIFOLD} digits per side.")
    if spacing == "gaussian":
        from scipy.stats import norm  # scipy costs ~60 MB: imported only for this grid

        q = norm.ppf((np.arange(n) + 0.5) / n)
        return q, q.copy()
    if spacing != "linear":
        raise BadInputError(f"Grid spacing {spacing!r}: use 'linear' or 'gaussian'.")
    if extent is None:
        raise BadInputError("A linear grid needs the extent it spans.")
    lo, hi = extent
    return np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)


def manifold_image(vae: VAE, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The digits decoded at every (x, y) of the grid, tiled into one uint8 image [28 ny, 28 nx].

    The top row is the largest y, so the image reads like a plot of the plane."""
    gx, gy = np.meshgrid(xs, ys[::-1])
    digits = decode_points(vae, np.stack([gx.ravel(), gy.ravel()], 1))
    ny, nx = len(ys), len(xs)
    return digits.reshape(ny, nx, 28, 28).transpose(0, 2, 1, 3).reshape(ny * 28, nx * 28)


# ---- diffusion in the plane -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentDiffusion:
    """A class-conditional denoiser on a VAE's standardised latents, with that standardisation."""

    name: str
    denoiser: Denoiser  # D(x, sigma, class_labels=...)
    schedule: NoiseSchedule
    mean: torch.Tensor  # [2] latent mean of the training digits
    std: torch.Tensor  # [2]
    null_label: int = NUM_CLASSES

    def conditioned(
        self,
        label: int | torch.Tensor | None,
        n: int,
        scale: float | Guidance,
        interval: tuple[float, float] | None = None,
        *,
        guide: Denoiser | None = None,
        sigmas: torch.Tensor | None = None,
    ) -> Denoiser:
        """D for n samples of class `label` (or per-sample labels [n]) under guidance `scale` (a scale: CFG,
        applied for sigma in `interval`, None: always; or any method, with autoguidance's weaker model `guide`
        and CFG++'s grid `sigmas`); label None: the unconditional model."""
        if label is None:
            return with_labels(self.denoiser, torch.full((n,), self.null_label))
        labels = label if isinstance(label, torch.Tensor) else torch.full((n,), int(label))
        return with_labels(self.denoiser, labels, scale, self.null_label, interval, guide=guide, sigmas=sigmas)

    def to_latent(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


def latent_diffusion(loaded: Any) -> LatentDiffusion:
    """A loaded latent model (zoo.loaders.LoadedModel: denoiser, schedule, title, null label, and the
    latent_stats.json it ships with its standardisation) as a LatentDiffusion."""
    stats = json.loads(Path(loaded.files["latent_stats.json"]).read_text(encoding="utf-8"))
    return LatentDiffusion(
        name=loaded.title,
        denoiser=loaded.denoiser,
        schedule=loaded.schedule,
        mean=torch.tensor(stats["mean"]),
        std=torch.tensor(stats["std"]),
        null_label=int(loaded.null_label),
    )


@dataclass(frozen=True, kw_only=True)
class LatentTrainSettings:
    # 1,000 steps of a 96-wide MLP: about 8 s on one core of a 2-core laptop, and its guided samples decode to
    # the class asked for about 81% of the time (bench/latent.py; 2,000 steps of 128 wide: 0.82 in 2.6x the time)
    steps: int = 1000
    width: int = 96
    depth: int = 3
    lr: float = 6e-3
    batch_size: int = 512
    cond_dropout: float = 0.15  # share of labels replaced by "no class", so guidance has an unconditional model
    seed: int = 0
    objective: str = "epsilon"  # or "flow_prediction": flow matching on the straight path

    def model_config(self) -> MLPConfig:
        return MLPConfig(dim=2, width=self.width, depth=self.depth, num_classes=NUM_CLASSES)

    def seconds(self) -> float:
        """About how long the training takes on this server (core/training/budget.py)."""
        return budget.estimate_seconds(self.steps, self.batch_size, parameter_count(self.model_config()))


class LatentTrainer:
    """Trains a fresh class-conditional MLP denoiser on latent points: epsilon on the cosine schedule, or flow
    matching on the flow path (its sampling grids then come from the flow schedule)."""

    def __init__(
        self, z: np.ndarray, labels: np.ndarray, settings: LatentTrainSettings, name: str, vae: str = ""
    ) -> None:
        if not 0 <= settings.cond_dropout < 1:
            raise BadInputError("The label dropout must lie in [0, 1).")
        if settings.objective not in LATENT_OBJECTIVES:
            raise BadInputError(f"The objective must be one of {', '.join(LATENT_OBJECTIVES)}.")
        budget.check(settings.seconds(), "training")  # refused before anything is built
        z_t = torch.as_tensor(z, dtype=torch.float32)
        self.name, self.settings = name, settings
        self.mean, self.std = z_t.mean(0), z_t.std(0).clamp_min(1e-6)
        self.schedule = make_schedule(LATENT_OBJECTIVES[settings.objective], 1000)
        config = settings.model_config()
        train = TrainConfig(
            batch_size=settings.batch_size,
            lr=settings.lr,
            ema_decay=0.995,
            prediction_type=settings.objective,
            seed=settings.seed,
            lr_schedule="cosine",
            warmup_steps=100,
        )
        batches = labelled_batches(
            (z_t - self.mean) / self.std, torch.tensor(labels), NUM_CLASSES, settings.cond_dropout
        )
        self.trainer = DiffusionTrainer(build_mlp(config, settings.seed), self.schedule, train, batches)
        run_config = {"kind": "latent", "vae": vae, "settings": asdict(settings), "model": config.to_dict()}
        # The run as the Training logs page reads it; its metrics are the trainer's own list, growing as it trains.
        self.snapshots = WeightSnapshots(200, config.to_saved(), self.schedule, settings.objective)
        self.log = Run(
            name=name,
            source="this session",
            config=run_config | {"train": train.to_dict()},
            metrics=self.trainer.metrics,
            checkpoints=self.snapshots.listing,
            snapshots=self.snapshots,
        )

    def train(self, callback: Callable[[DiffusionTrainer], None] | None = None, every: int = 20) -> None:
        if self.trainer.step + self.settings.steps > MAX_TRAIN_STEPS:
            raise BadInputError(f"A latent model trains for at most {MAX_TRAIN_STEPS:,} steps.")
        with torch_threads(1):  # a small MLP: one thread is as fast and is not stalled by a busy core
            self.snapshots.train(self.trainer, self.settings.steps, callback, every)

    def model(self) -> LatentDiffusion:
        denoiser = model_denoiser(self.trainer.sampling_model, self.schedule, self.settings.objective, NUM_CLASSES)
        return LatentDiffusion(name=self.name, denoiser=denoiser, schedule=self.schedule, mean=self.mean, std=self.std)


@dataclass(frozen=True, eq=False)
class LatentPaths:
    samples: torch.Tensor  # [n, 2] final latent points
    path: torch.Tensor  # [F, n, 2] VP states in latent units, from noise to the samples
    sigmas: list[float]  # [F] noise level of each frame (0 for the last)
    seconds: float
    label: dict[str, Any]


def sample_paths(
    model: LatentDiffusion,
    sampler: str,
    steps: int,
    n: int,
    seed: int = 0,
    label: int | None = None,
    scale: float = 3.0,
    on_frame: Callable[[int, torch.Tensor, bool], None] | None = None,
    **options: float | str,
) -> LatentPaths:
    """n samples (class `label` at guidance `scale`, or unconditional), with every step's position.

    on_frame(index, path_so_far [f, n, 2], finished) runs after each step and at the end, for live drawing."""
    get_sampler(sampler)
    if not 1 <= n <= MAX_SAMPLES or not 1 <= steps <= MAX_STEPS:
        raise BadInputError(f"Sample 1 to {MAX_SAMPLES} latent points in 1 to {MAX_STEPS} steps.")
    if label is not None and not 0 <= label < NUM_CLASSES:
        raise BadInputError(f"The class must be 0-{NUM_CLASSES - 1} (or none).")
    if not 0 <= scale <= 20:
        raise BadInputError("The guidance scale must lie in [0, 20].")
    sigmas = model.schedule.capped_sigmas(steps).float()  # the cosine schedule's last steps reach sigma ~ 600
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g) * sigmas[0]

    def on_step(rec: PathRecorder) -> None:
        if on_frame is not None:
            on_frame(len(rec.states) - 1, model.to_latent(rec.path()), rec.finished)

    recorder = PathRecorder(on_step=on_step)
    tic = time.perf_counter()
    with torch_threads(1):
        out = sample(sampler, model.conditioned(label, n, scale), x, sigmas, generator=g, callback=recorder, **options)
    recorder.finish(out)
    final = model.to_latent(out)
    label_info = {"sampler": sampler, "steps": len(sigmas) - 1, "n": n, "seed": seed, "class": label, "scale": scale}
    return LatentPaths(
        samples=final,
        path=model.to_latent(recorder.path()),
        sigmas=[float(s) for s in sigmas],
        seconds=time.perf_counter() - tic,
        label=label_info,
    )
