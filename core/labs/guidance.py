"""What classifier-free guidance trades, measured: as the scale w grows, samples are read more often as the
class they asked for, and look more alike within it. A sweep over w (and over an optional guidance interval,
Kynkäänniemi et al. 2024) draws n samples per scale, spread evenly over the ten classes, from the same seeds,
and reads them with the bundled MNIST classifier:

- accuracy: the share read as the class asked for, with its binomial standard error;
- diversity: the mean pairwise distance between samples of one class in the classifier's features, averaged
  over the classes (standard error over the classes); lower is less diverse;
- FD-LeNet: the Frechet distance of all samples to held-out digits in those features, with its bootstrap SE.

Both conditional models are swept the same way: the pixel UNet (mnist-cond-cfg) and the latent model, whose
points are decoded by its VAE first (`pixel_draw`, `latent_draw`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.data.images import uint8_to_tensor
from core.device import torch_threads
from core.diffusion.fields import DriftField, drift_field, mesh
from core.diffusion.samplers import sample
from core.errors import BadInputError
from core.labs.compare import CHUNK, sample_many
from core.labs.latent import NUM_CLASSES, LatentDiffusion, decode_points
from core.labs.samplers import ImageModel, SamplerSettings
from core.metrics.images import classify, frechet_distance_se

# (scale, n, seed) -> images in [-1, 1] [n, 1, 28, 28] and the class each asked for [n]
DrawFn = Callable[[float, int, int], tuple[torch.Tensor, torch.Tensor]]
SCALES = (0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)


@dataclass(frozen=True, kw_only=True)
class SweepRow:
    scale: float
    samples: int
    accuracy: float
    accuracy_se: float
    diversity: float
    diversity_se: float
    fd_lenet: float
    fd_se: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def within_class_diversity(features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean pairwise Euclidean distance between the features of samples that asked for the same class,
    averaged over the classes with at least two samples, and its standard error over those classes."""
    per_class = []
    for k in np.unique(labels):
        f = torch.as_tensor(features[labels == k], dtype=torch.float64)
        if len(f) >= 2:
            d = torch.cdist(f, f)
            per_class.append(float(d.sum() / (len(f) * (len(f) - 1))))  # the diagonal is 0
    values = np.asarray(per_class)
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def sweep(
    draw: DrawFn,
    scales: Sequence[float],
    n: int,
    classifier: torch.nn.Module,
    reference: np.ndarray,
    seed: int = 0,
) -> Iterator[SweepRow]:
    """One row per scale (a caller may stop between rows and keep those done); see the module docstring."""
    for scale in scales:
        tic = time.perf_counter()
        images, asked = draw(float(scale), n, seed)
        read, features = classify(classifier, images.clamp(-1, 1))
        correct = read == asked.numpy()
        p = float(correct.mean())
        diversity, diversity_se = within_class_diversity(features, asked.numpy())
        fd, fd_se = frechet_distance_se(features, reference)
        yield SweepRow(
            scale=float(scale),
            samples=n,
            accuracy=p,
            accuracy_se=float(np.sqrt(p * (1 - p) / n)),
            diversity=diversity,
            diversity_se=diversity_se,
            fd_lenet=fd,
            fd_se=fd_se,
            seconds=time.perf_counter() - tic,
        )


def pixel_draw(
    model: ImageModel, sampler: str = "dpmpp_2m", steps: int = 20, interval: tuple[float, float] | None = None
) -> DrawFn:
    """Samples of a class-conditional pixel model, sample k asking for class k mod 10, in chunks of CHUNK."""
    assert CHUNK % model.num_classes == 0  # every chunk starts at class 0, so the labels run on across chunks

    def draw(scale: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        settings = SamplerSettings(
            sampler=sampler,
            steps=steps,
            max_sigma=model.schedule.sampling_cap,
            seed=seed,
            guidance=scale,
            guidance_interval=interval,
            spread_classes=True,
        )
        images, _ = sample_many(model, settings, n)
        return images, torch.arange(n) % model.num_classes

    return draw


def latent_draw(
    model: LatentDiffusion,
    vae: torch.nn.Module,
    sampler: str = "dpmpp_2m",
    steps: int = 20,
    interval: tuple[float, float] | None = None,
) -> DrawFn:
    """Latent samples (sample k asking for class k mod 10) decoded by the VAE into digits."""

    def draw(scale: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % NUM_CLASSES
        sigmas = model.schedule.capped_sigmas(steps).float()
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 2, generator=g) * sigmas[0]
        z = sample(sampler, model.conditioned(labels, n, scale, interval), x, sigmas, generator=g)
        with torch.no_grad():
            digits = decode_points(vae, model.to_latent(z))
        return uint8_to_tensor(digits[:, None]), labels

    return draw


def latent_fields(
    model: LatentDiffusion, label: int, scale: float, sigmas: Sequence[float], points: torch.Tensor, side: int = 20
) -> list[tuple[str, DriftField]]:
    """The conditional (class `label`), unconditional and guided (scale w) drift fields of the latent model at
    the noise levels `sigmas`, on a mesh over the standardised latent `points` [N, 2] (their central 98% on
    each axis), in latent units: the
    guided one is the unconditional field plus w times the conditional one's difference from it."""
    if not 0 <= label < NUM_CLASSES:
        raise BadInputError(f"The class must be 0-{NUM_CLASSES - 1}.")
    T1 = model.schedule.num_steps - 1
    times = (model.schedule.sigma_to_t(torch.as_tensor(sigmas, dtype=torch.float64)) / T1).clamp(1e-6, 1)
    _, grid = mesh(points.quantile(0.01, dim=0), points.quantile(0.99, dim=0), side)  # where the digits are
    size = len(times) * len(grid)
    panels = [
        (f"conditional: class {label}", model.conditioned(label, size, 1.0)),
        ("unconditional", model.conditioned(None, size, 1.0)),
        (f"guided: w = {scale:g}", model.conditioned(label, size, scale)),
    ]
    with torch_threads(1):
        return [
            (title, drift_field(d, model.schedule, grid, times).rescaled(model.mean.double(), model.std.double()))
            for title, d in panels
        ]
