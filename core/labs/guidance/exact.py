"""Guidance on a law known exactly: two classes in the plane, each a Gaussian mixture (`ClassMixture`), so the
conditional and unconditional denoisers are exact, and so is autoguidance's weaker model, taken as the exact
denoiser of the law blurred by a spread b (every class too wide, as an under-trained network's is). What is
left to measure is what each method does to the samples, against the exact class density p(x | c):

- quality: the mean exact log p(x | c) of the samples (higher: deeper in the class);
- off support: the share of samples where p(x | c) is below the level that holds MASS of the class's own
  mass (exact draws land there 1 - MASS of the time);
- coverage (and precision, recall; core/metrics/prdc.py): as many exact draws of the class as samples, and the
  share of those whose 5-NN ball holds a sample: how much of the class the samples reach.

Guidance is often read as sampling the tilted law p(x | c)^w p(x)^(1 - w) (autoguidance: the guide's law in
place of p(x)). It does not: the tilt of each noisy level is not the noisy tilt of the data's (Chidambaram et
al. 2024 prove it for mixtures), so the page draws the tilted density, normalised on a grid, beside the samples.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.diffusion.denoisers import with_labels
from core.diffusion.grids import karras_sigmas
from core.diffusion.guidance import Guidance
from core.diffusion.mixture import ClassMixture, GaussianMixture
from core.diffusion.samplers import sample
from core.errors import BadInputError
from core.labs.ground_truth.mixtures import grid
from core.labs.ground_truth.mixtures import view_box as whole_box
from core.labs.guidance.sweep import Series
from core.metrics.prdc import PRDC, prdc

MASS = 0.99  # the class's high-density region holds this share of its mass
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0  # EDM's range; the classes spread over a few units
LEVEL_DRAWS = 200_000  # exact draws that place the high-density level
MAX_SAMPLES = 20_000
CLASS_NAMES = ("A", "B")


def two_classes() -> ClassMixture:
    """The page's law: class A an arc of four Gaussians, one of them (near the middle) inside class B's region;
    class B two Gaussians. Guidance pushes A's samples away from B, so that inner component is where a method
    loses or keeps A's mass."""
    a = GaussianMixture(
        torch.tensor([[-2.2, 0.2], [0.0, 1.8], [2.2, 0.2], [0.2, -0.6]]),
        torch.tensor([[0.55, 0.35], [0.35, 0.35], [0.55, 0.35], [0.3, 0.3]]),
        torch.tensor([0.3, 0.25, 0.3, 0.15]),
    )
    b = GaussianMixture(torch.tensor([[0.0, -0.9], [-1.2, -2.3]]), torch.tensor([[0.6, 0.4], [0.4, 0.4]]))
    return ClassMixture([a, b], torch.tensor([0.5, 0.5]))


@dataclass(frozen=True, kw_only=True)
class ExactSettings:
    """How each (method, scale) is sampled and measured: the class, sampler and steps (Karras grid over EDM's
    sigma range), samples, the guide's blur b and the seed (the same start noise for every method)."""

    label: int = 0
    sampler: str = "dpmpp_2m"
    steps: int = 32
    n: int = 2000
    blur: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise BadInputError("The class must be A (0) or B (1).")
        if not 2 <= self.n <= MAX_SAMPLES:
            raise BadInputError(f"Draw 2 to {MAX_SAMPLES:,} samples.")
        if not 0 < self.blur <= 5:
            raise BadInputError("The guide's blur must lie in (0, 5].")


@dataclass(frozen=True, kw_only=True)
class ExactRow:
    series: str
    scale: float
    samples: int
    log_p: float  # mean exact log p(x | c)
    log_p_se: float
    off_support: float  # share below the class's MASS level
    off_support_se: float
    prdc: PRDC  # coverage (and precision, recall, density) against as many exact draws, with their SEs
    seconds: float


def support_level(mix: ClassMixture, label: int, mass: float = MASS, draws: int = LEVEL_DRAWS) -> float:
    """The log density log p(x | c) above which the class holds `mass` of its draws (a quantile of exact draws;
    its own error is of order 1e-3 in the share at 200,000 draws)."""
    x = mix.sample(draws, label, torch.Generator().manual_seed(12345))
    return float(torch.quantile(mix.log_prob(x, label), 1 - mass))


def guided_samples(mix: ClassMixture, guidance: Guidance, settings: ExactSettings) -> torch.Tensor:
    """settings.n samples of class settings.label under `guidance`, from the seed's noise (the same for every
    method), [n, 2] float64."""
    sigmas = karras_sigmas(settings.steps, SIGMA_MIN, SIGMA_MAX).double()
    g = torch.Generator().manual_seed(settings.seed)
    x = torch.randn(settings.n, 2, generator=g, dtype=torch.float64) * sigmas[0]
    labels = torch.full((settings.n,), settings.label)
    guide = mix.blurred(settings.blur).denoise
    denoiser = with_labels(mix.denoise, labels, guidance, mix.null_label, guide=guide, sigmas=sigmas)
    return sample(settings.sampler, denoiser, x, sigmas, generator=g)


def measure(
    mix: ClassMixture,
    samples: torch.Tensor,
    label: int,
    level: float,
    truth: torch.Tensor,
    series: str = "",
    scale: float = float("nan"),
    seconds: float = 0.0,
) -> ExactRow:
    """The measures (module docstring) of samples [n, 2] of class `label`, against its level and exact draws."""
    log_p = mix.log_prob(samples, label).numpy()
    finite = np.where(np.isfinite(log_p), log_p, -1e300)
    off = finite < level
    n = len(samples)
    return ExactRow(
        series=series,
        scale=scale,
        samples=n,
        log_p=float(log_p.mean()),
        log_p_se=float(log_p.std(ddof=1) / np.sqrt(n)),
        off_support=float(off.mean()),
        off_support_se=float(np.sqrt(off.mean() * (1 - off.mean()) / n)),
        prdc=prdc(truth.numpy(), samples.numpy()),
        seconds=seconds,
    )


def exact_draws(mix: ClassMixture, settings: ExactSettings) -> torch.Tensor:
    """settings.n exact draws of the class, apart from the measured ones' (the truth PRDC compares with)."""
    return mix.sample(settings.n, settings.label, torch.Generator().manual_seed(settings.seed + 777))


def exact_study(
    mix: ClassMixture, plan: Sequence[Series], settings: ExactSettings
) -> Iterator[tuple[str, float, torch.Tensor, ExactRow]]:
    """First the truth (exact draws of the class, series "exact draws"), then every series at every scale:
    (series, scale, samples, row), one at a time, so a caller may stop between them and keep those done."""
    level, truth = support_level(mix, settings.label), exact_draws(mix, settings)
    own = mix.sample(settings.n, settings.label, torch.Generator().manual_seed(settings.seed + 1))
    yield "exact draws", float("nan"), own, measure(mix, own, settings.label, level, truth, "exact draws")
    for series in plan:
        for scale in series.scales:
            tic = time.perf_counter()
            x = guided_samples(mix, series.at(scale), settings)
            seconds = time.perf_counter() - tic
            yield series.name, scale, x, measure(mix, x, settings.label, level, truth, series.name, scale, seconds)


def tilted_density(
    mix: ClassMixture,
    label: int,
    scale: float,
    reference: ClassMixture | None,
    lo: Sequence[float],
    hi: Sequence[float],
    side: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p(x | c)^w q(x)^(1 - w), normalised to integrate to 1 on a side x side grid over [lo, hi]: q is the whole
    law p(x) (reference None) or the class of the `reference` law (autoguidance's guide). Returns the axes and
    the density [side (y), side (x)]."""
    xs, ys, pts = grid(lo, hi, side)
    base = mix.log_prob(pts, None) if reference is None else reference.log_prob(pts, label)
    log_t = scale * mix.log_prob(pts, label) + (1 - scale) * base
    density = (log_t - log_t.max()).exp().numpy().reshape(side, side)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    return xs, ys, density / (density.sum() * cell)


def class_density(
    mix: ClassMixture, label: int | None, lo: Sequence[float], hi: Sequence[float], side: int
) -> np.ndarray:
    """p(x | c) (label None: p(x)) on the same grid as `tilted_density`, [side (y), side (x)]."""
    return mix.log_prob(grid(lo, hi, side)[2], label).exp().numpy().reshape(side, side)


def view_box(mix: ClassMixture) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis bounds that hold every component of both classes to three of its stds."""
    lo, hi = whole_box(mix.whole)
    return lo.numpy(), hi.numpy()
