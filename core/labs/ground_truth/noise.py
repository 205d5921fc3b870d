"""The noise range every experiment on the Ground truth page runs over, and the common start points.

EDM's defaults (Karras et al. 2022): sigma from SIGMA_MAX = 80 down to SIGMA_MIN = 0.002, in the mixture's own
units. At SIGMA_MAX the blurred mixture is nearly N(0, SIGMA_MAX^2 I) (its spread is tiny beside 80), so every
sampler starts from draws of that Gaussian.
"""

from __future__ import annotations

import torch

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def start_points(n: int, seed: int) -> torch.Tensor:
    """The common start: N(0, SIGMA_MAX^2 I) points [n, 2], float64."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * SIGMA_MAX
