"""Step grids: the noise levels a sampler visits, from sigma_max down to sigma_min, then 0.

Every grid here is a decreasing float64 tensor of n sigmas followed by a final 0 (n denoiser steps). The
hand-made ones depend only on the range:

- `karras_sigmas`: evenly spaced in sigma^(1/rho) (Karras et al. 2022, eq. 5);
- `log_snr_sigmas`: evenly spaced in log sigma, i.e. in log-SNR = -2 log sigma (DPM-Solver's choice, Lu et al.
  2022); the limit of Karras's grid as rho grows;
- `uniform_sigmas`: evenly spaced in sigma, which is EDM's time t = sigma (rho = 1). A schedule's own time (a
  discrete model's t, the flow path's t) is `NoiseSchedule.sampling_sigmas(n, "uniform-time")`.

Grids fitted to a denoiser (Align Your Steps, GITS, a direct search) are in `fitted_grids.py`.
`custom_sigmas` reads a grid a person types.
"""

from __future__ import annotations

import itertools
import math
import re

import torch

from core.errors import BadInputError

MAX_CUSTOM_STEPS = 1000


def check_range(n: int, sigma_min: float, sigma_max: float) -> None:
    if n < 1 or not 0 < sigma_min < sigma_max:
        raise BadInputError("A step grid needs at least one step and 0 < sigma_min < sigma_max.")


def _with_zero(sigmas: torch.Tensor, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Exact ends (free of rounding), then the final 0."""
    sigmas = sigmas.to(torch.float64).clone()
    sigmas[0] = sigma_max
    if len(sigmas) > 1:
        sigmas[-1] = sigma_min
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _ramp(n: int) -> torch.Tensor:
    return torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022, eq. 5: sigma_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho, then 0.

    rho = 7 spends more steps at low noise, where the images' details form.
    """
    check_range(n, sigma_min, sigma_max)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((hi + _ramp(n) * (lo - hi)) ** rho, sigma_min, sigma_max)


def log_snr_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """n sigmas evenly spaced in log sigma (so in log-SNR), from sigma_max to sigma_min, then 0."""
    check_range(n, sigma_min, sigma_max)
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return _with_zero(torch.exp(hi + _ramp(n) * (lo - hi)), sigma_min, sigma_max)


def uniform_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """n sigmas evenly spaced in sigma (EDM's time t = sigma), then 0."""
    check_range(n, sigma_min, sigma_max)
    return _with_zero(sigma_max + _ramp(n) * (sigma_min - sigma_max), sigma_min, sigma_max)


HAND_MADE = {"karras": karras_sigmas, "log-snr": log_snr_sigmas, "uniform": uniform_sigmas}


def custom_sigmas(text: str, sigma_max: float | None = None) -> torch.Tensor:
    """A grid typed as numbers (commas, spaces or new lines between them), decreasing and positive; a final 0
    is appended where it is missing. Raises BadInputError with the reason for anything else."""
    words = [w for w in re.split(r"[\s,;]+", text.strip()) if w]
    if not words:
        raise BadInputError("Type the grid's noise levels, largest first, e.g. 80, 10, 2, 0.3, 0.002.")
    if len(words) > MAX_CUSTOM_STEPS + 1:
        raise BadInputError(f"A typed grid takes at most {MAX_CUSTOM_STEPS:,} noise levels (got {len(words):,}).")
    values = []
    for word in words:
        try:
            values.append(float(word))
        except ValueError:
            raise BadInputError(f"{word[:40]!r} in the typed grid is not a number.") from None
    if values[-1] != 0:
        values.append(0.0)
    if not all(math.isfinite(v) for v in values) or min(values) < 0:
        raise BadInputError("The typed noise levels must be finite and not negative.")
    if len(values) < 2 or any(b >= a for a, b in itertools.pairwise(values)):
        raise BadInputError("The typed noise levels must be strictly decreasing (largest first), ending at 0.")
    if sigma_max is not None and values[0] > sigma_max * (1 + 1e-9):
        raise BadInputError(f"The typed grid starts at sigma {values[0]:g}, above this model's {sigma_max:.4g}.")
    return torch.tensor(values, dtype=torch.float64)


def format_grid(sigmas: torch.Tensor) -> str:
    """A grid as the text `custom_sigmas` reads back (4 significant digits, the final 0 left out)."""
    return ", ".join(f"{float(s):.4g}" for s in sigmas[:-1])
