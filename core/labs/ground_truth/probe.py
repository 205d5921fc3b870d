"""The trajectory probe: each chosen sampler's path from one point at one noise level, beside the exact
probability-flow ODE path (fourth-order LMS on 1,000 steps with the exact denoiser), on the Karras grid down to
SIGMA_MIN (noise.py). The page draws them over the exact density at each noise level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion.grids import karras_sigmas
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS, Step, sample
from core.errors import BadInputError
from core.labs.ground_truth.noise import SIGMA_MAX, SIGMA_MIN

MAX_PROBE_STEPS = 100


@dataclass(frozen=True)
class ProbePath:
    name: str
    title: str
    sigmas: np.ndarray  # [F] the noise level of each recorded state (the last: 0)
    points: np.ndarray  # [F, 2] the VE state x at that level (the last: the sample)
    nfe: int


@dataclass(frozen=True)
class Probe:
    paths: list[ProbePath]  # one per sampler
    exact: ProbePath  # the exact ODE path
    sigmas: np.ndarray  # the shared grid (the frames): sigma_start ... SIGMA_MIN, 0


def probe(
    mix: GaussianMixture,
    start: Sequence[float],
    sigma_start: float,
    samplers: Sequence[str],
    steps: int,
    seed: int = 0,
) -> Probe:
    """Each sampler's path from the point `start` at noise level `sigma_start` on the Karras grid of `steps`
    steps down to SIGMA_MIN (stochastic ones with noise from `seed`), and the exact ODE path (LMS, 1,000 steps).
    EDM records its raised level sigma-hat at each step; the frames follow the shared grid."""
    if not SIGMA_MIN < sigma_start <= SIGMA_MAX or not 1 <= steps <= MAX_PROBE_STEPS:
        raise BadInputError(
            f"Start at a noise level in ({SIGMA_MIN}, {SIGMA_MAX:g}] with 1 to {MAX_PROBE_STEPS} steps."
        )
    x0 = torch.tensor([list(start)], dtype=torch.float64)
    if x0.shape != (1, 2) or not bool(x0.isfinite().all()):
        raise BadInputError("The start must be a finite 2-D point.")

    def run(name: str, n: int, generator: torch.Generator | None) -> ProbePath:
        sigmas, points = [], []

        def record(step: Step) -> None:
            sigmas.append(step.sigma)
            points.append(step.x[0].tolist())

        grid = karras_sigmas(n, SIGMA_MIN, sigma_start)
        out = sample(name, mix.denoise, x0.clone(), grid, generator=generator, callback=record)
        spec = SAMPLERS[name]
        return ProbePath(name, spec.title, np.array([*sigmas, 0.0]), np.array([*points, out[0].tolist()]), spec.nfe(n))

    with torch_threads(1):
        paths = [run(name, steps, torch.Generator().manual_seed(seed)) for name in samplers]
        exact = run("lms", 1000, None)
    return Probe(
        paths=paths,
        exact=ProbePath("exact", "Exact ODE", exact.sigmas, exact.points, exact.nfe),
        sigmas=karras_sigmas(steps, SIGMA_MIN, sigma_start).numpy(),
    )


def start_from_noise(mix: GaussianMixture, sigma: float, seed: int) -> list[float]:
    """One draw from the mixture blurred by `sigma` (a point where a run at that noise level could be)."""
    g = torch.Generator().manual_seed(seed)
    x, _ = mix.sample(1, g)
    return (x[0] + sigma * torch.randn(2, generator=g, dtype=torch.float64)).tolist()
