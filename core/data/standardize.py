"""Standardisation for training: centre the data and divide by ONE common scale.

y = (x - mean) / s with s = sqrt(trace(Cov) / D), the RMS per-axis standard deviation, so the data have
mean 0 and an average per-axis variance of 1, which matches the N(0, I) prior the diffusion ends in.
One scale for every axis (not one per axis) because it keeps the geometry: circles stay circles, angles
and arrow directions in the drift plots are the original ones, a thin or flat data set (a straight
drawn line, a helix seen from the side) is not blown up along its thin axis until its noise looks like
signal, and an isotropic Gaussian mixture stays isotropic, so its exact denoiser still applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError


@dataclass(frozen=True, eq=False)
class Standardizer:
    mean: torch.Tensor  # [D] float64
    scale: float

    @classmethod
    def fit(cls, points: torch.Tensor) -> Standardizer:
        x = points.double()
        mean = x.mean(0)
        scale = float(((x - mean) ** 2).mean(0).mean().sqrt())
        if not scale > 1e-12 * (1 + float(mean.abs().max())):
            raise BadInputError("All the points are the same point: there is no shape to learn.")
        return cls(mean, scale)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Original units -> standardised, same dtype as x."""
        return ((x.double() - self.mean) / self.scale).to(x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Standardised -> original units, same dtype as y."""
        return (self.mean + self.scale * y.double()).to(y.dtype)

    def mixture(self, mix: GaussianMixture) -> GaussianMixture:
        """The same mixture in standardised coordinates (means shifted and scaled, stds scaled)."""
        return GaussianMixture((mix.means - self.mean) / self.scale, mix.stds / self.scale, mix.weights)
