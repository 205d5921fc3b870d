"""What guidance trades, measured: as the scale grows, samples are read more often as the class they asked
for, and look more alike within it. A sweep runs each series (a guidance method with its settings: CFG, CFG in
a sigma interval (Kynkäänniemi et al. 2024), CFG + rescale, APG, CFG++, autoguidance; core/diffusion/guidance.py)
over its scales, drawing n samples per scale, spread evenly over the ten classes, from the same seeds, and reads
them with the bundled MNIST classifier:

- accuracy: the share read as the class asked for, with its binomial standard error;
- diversity: the mean pairwise distance between samples of one class in the classifier's features, averaged
  over the classes (standard error over the classes); lower is less diverse;
- FD-LeNet: the Frechet distance of all samples to held-out digits in those features, with its bootstrap SE;
- precision, recall, density and coverage (core/metrics/prdc.py) against as many held-out digits as samples,
  in the same features: quality (precision, density) and diversity (recall, coverage) measured apart.

Both conditional models are swept the same way: the pixel UNet (mnist-cond-cfg) and the latent model, whose
points are decoded by its VAE first (`pixel_draw`, `latent_draw`). Autoguidance guides each with its weaker
model (a smaller network trained a quarter as long: mnist-cond-guide, mnist-latent-guide) or one a user names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from core.data.images import uint8_to_tensor
from core.diffusion.denoisers import Denoiser
from core.diffusion.guidance import Guidance
from core.diffusion.samplers import sample
from core.errors import BadInputError
from core.labs.compare import CHUNK, prdc_reference, sample_many
from core.labs.latent import NUM_CLASSES, LatentDiffusion, decode_points
from core.labs.samplers import ImageModel, SamplerSettings
from core.metrics.images import classify, frechet_distance_se
from core.metrics.prdc import PRDC, prdc

# (scale, n, seed) -> images in [-1, 1] [n, 1, 28, 28] and the class each asked for [n]
DrawFn = Callable[[float, int, int], tuple[torch.Tensor, torch.Tensor]]
SCALES = (0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
LAMBDAS = (0.2, 0.4, 0.6, 0.8, 1.0)  # CFG++'s scales


@dataclass(frozen=True)
class Series:
    """One line of a sweep: a guidance method with its settings (`guidance`, its scale unused) over `scales`."""

    name: str
    guidance: Guidance
    scales: tuple[float, ...]

    def at(self, scale: float) -> Guidance:
        return replace(self.guidance, scale=float(scale))


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
    prdc: PRDC  # precision, recall, density, coverage against as many held-out digits, with their SEs
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
        yield score(images, asked, classifier, reference, float(scale), time.perf_counter() - tic)


def score(
    images: torch.Tensor,
    asked: torch.Tensor,
    classifier: torch.nn.Module,
    reference: np.ndarray,
    scale: float = float("nan"),
    seconds: float = 0.0,
) -> SweepRow:
    """The measures of images [n, 1, 28, 28] in [-1, 1] (n >= 6) that asked for the classes `asked` [n]; PRDC
    against n reference features, the same draw as Compare checkpoints' (`prdc_reference`)."""
    read, features = classify(classifier, images.clamp(-1, 1))
    correct = read == asked.numpy()
    p, n = float(correct.mean()), len(images)
    diversity, diversity_se = within_class_diversity(features, asked.numpy())
    fd, fd_se = frechet_distance_se(features, reference)
    return SweepRow(
        scale=scale,
        samples=n,
        accuracy=p,
        accuracy_se=float(np.sqrt(p * (1 - p) / n)),
        diversity=diversity,
        diversity_se=diversity_se,
        fd_lenet=fd,
        fd_se=fd_se,
        prdc=prdc(prdc_reference(reference, n), features),
        seconds=seconds,
    )


def pixel_draw(
    model: ImageModel,
    sampler: str = "dpmpp_2m",
    steps: int = 20,
    series: Guidance | None = None,
    guide: Denoiser | None = None,
) -> DrawFn:
    """Samples of a class-conditional pixel model under the method `series` (CFG by default) at each scale,
    sample k asking for class k mod 10, in chunks of CHUNK; autoguidance guided by `guide`."""
    assert CHUNK % model.num_classes == 0  # every chunk starts at class 0, so the labels run on across chunks
    template = series or Guidance()

    def draw(scale: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        settings = SamplerSettings(
            sampler=sampler,
            steps=steps,
            max_sigma=model.schedule.sampling_cap,
            seed=seed,
            guidance=replace(template, scale=scale),
            spread_classes=True,
        )
        images, _ = sample_many(model, settings, n, guide=guide)
        return images, torch.arange(n) % model.num_classes

    return draw


def latent_draw(
    model: LatentDiffusion,
    vae: torch.nn.Module,
    sampler: str = "dpmpp_2m",
    steps: int = 20,
    series: Guidance | None = None,
    guide: LatentDiffusion | None = None,
) -> DrawFn:
    """Latent samples (sample k asking for class k mod 10) under the method `series` (CFG by default), decoded
    by the VAE into digits; autoguidance guided by the weaker latent model `guide`."""
    template = series or Guidance()
    weak = None if guide is None else same_latent(model, guide)

    def draw(scale: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % NUM_CLASSES
        sigmas = model.schedule.capped_sigmas(steps).float()
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 2, generator=g) * sigmas[0]
        guided = model.conditioned(labels, n, replace(template, scale=scale), guide=weak, sigmas=sigmas)
        z = sample(sampler, guided, x, sigmas, generator=g)
        with torch.no_grad():
            digits = decode_points(vae, model.to_latent(z))
        return uint8_to_tensor(digits[:, None]), labels

    return draw


def same_latent(model: LatentDiffusion, guide: LatentDiffusion) -> Denoiser:
    """The guide's denoiser, refused unless it works in the model's own standardised latent (the same VAE's
    latents, the same mean and spread): D is called there."""
    if not (torch.allclose(model.mean, guide.mean, atol=1e-5) and torch.allclose(model.std, guide.std, atol=1e-5)):
        raise BadInputError(f"{guide.name} does not share {model.name}'s latent standardisation, so cannot guide it.")
    return guide.denoiser
