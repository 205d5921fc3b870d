r"""Drift fields on a mesh of points: the probability-flow velocity and the score, learned or exact.

Time is the normalised training time u = t / (T - 1) in [0, 1] (u = 1: pure noise). Points are in VP
coordinates y = sqrt(ab) x_0 + sqrt(1 - ab) eps (x = y / sqrt(ab) in the denoiser's VE coordinates,
ab = 1 / (1 + sigma^2)), where the noisy cloud keeps the data's scale at every time. With
beta(u) = -d log ab / du and the score from Tweedie's formula,

    score(y, u) = grad_y log p_u(y) = (sqrt(ab) D(y / sqrt(ab), sigma) - y) / (1 - ab),
    velocity(y, u) = -dy/du = beta(u) / 2 * (y + score(y, u)),

the velocity of the probability-flow ODE (Song et al. 2021, eq. 13) run backwards in time, the way the
samplers move the points from noise (u = 1) to data (u = 0). Any denoiser works: a trained model through
`DiscreteTimeDenoiser`, or the exact `GaussianMixture`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.diffusion.denoisers import Denoiser
from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError

MAX_GRID_POINTS = 40_000
MAX_TIMES = 40


@dataclass(frozen=True, eq=False)
class DriftField:
    times: torch.Tensor  # [F] normalised time u
    sigmas: torch.Tensor  # [F]
    points: torch.Tensor  # [G, D] grid, VP coordinates
    velocity: torch.Tensor  # [F, G, D] -dy/du
    score: torch.Tensor  # [F, G, D] grad_y log p_u(y)

    def rescaled(self, mean: torch.Tensor, scale: float) -> DriftField:
        """The same field for y' = mean + scale * y (standardised -> original units)."""
        return DriftField(
            times=self.times,
            sigmas=self.sigmas,
            points=mean + scale * self.points,
            velocity=scale * self.velocity,
            score=self.score / scale,
        )

    def __sub__(self, other: DriftField) -> DriftField:
        return DriftField(
            times=self.times,
            sigmas=self.sigmas,
            points=self.points,
            velocity=self.velocity - other.velocity,
            score=self.score - other.score,
        )


def mesh(lo: torch.Tensor, hi: torch.Tensor, n: int, pad: float = 0.1) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A mesh of square cells over the box [lo, hi] grown by `pad` of its largest side on each side.

    n points along the longest side, as many as fit at the same spacing along the others (centred).
    Returns the per-axis coordinates and the points [G, D] (first axis varying slowest).
    """
    lo, hi = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
    longest = float((hi - lo).max()) or 1.0
    lo, hi = lo - pad * longest, hi + pad * longest
    h = (longest * (1 + 2 * pad)) / max(n - 1, 1)
    counts = [round(float(s) / h) + 1 for s in hi - lo]
    if n < 2 or math.prod(counts) > MAX_GRID_POINTS:
        raise BadInputError(f"The grid must have 2 or more points a side and at most {MAX_GRID_POINTS:,} in all.")
    centre = (lo + hi) / 2
    axes = [c + h * (torch.arange(k, dtype=torch.float64) - (k - 1) / 2) for c, k in zip(centre, counts, strict=True)]
    coords = torch.meshgrid(*axes, indexing="ij")
    return axes, torch.stack([c.reshape(-1) for c in coords], 1)


def _dlog_sigma_du(schedule: NoiseSchedule, u: torch.Tensor) -> torch.Tensor:
    """d log sigma / du, exact for the sampler's sigma(t): log sigma is linear between training steps."""
    T1 = schedule.num_steps - 1
    k = (u * T1).floor().long().clamp(0, T1 - 1)
    return (schedule.log_sigmas[k + 1] - schedule.log_sigmas[k]) * T1


@torch.inference_mode()
def drift_field(denoiser: Denoiser, schedule: NoiseSchedule, points: torch.Tensor, times: torch.Tensor) -> DriftField:
    """Velocity and score (see the module docstring) at every grid point [G, D] and time u [F], in one batch."""
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if not 1 <= len(times) <= MAX_TIMES or bool(((times <= 0) | (times > 1)).any()):
        raise BadInputError(f"Choose 1 to {MAX_TIMES} times u in (0, 1].")
    points = torch.as_tensor(points, dtype=torch.float64)
    F, G = len(times), len(points)
    sigmas = schedule.t_to_sigma(times * (schedule.num_steps - 1))
    ab = 1 / (1 + sigmas**2)
    beta = 2 * sigmas**2 * ab * _dlog_sigma_du(schedule, times)  # -d log ab / du, with log ab = -log(1 + sigma^2)
    y = points.expand(F, G, -1)
    c = ab.sqrt()[:, None, None]
    x = (y / c).reshape(F * G, -1)
    denoised = denoiser(x.float(), sigmas.repeat_interleave(G).float()).double().reshape(F, G, -1)
    score = (c * denoised - y) / (1 - ab)[:, None, None]
    velocity = 0.5 * beta[:, None, None] * (y + score)
    return DriftField(times=times, sigmas=sigmas, points=points, velocity=velocity, score=score)
