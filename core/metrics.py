"""Distances between sample sets, for judging samplers and trained models."""

from __future__ import annotations

import torch

from core.errors import BadInputError


def sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    projections: int = 256,
    p: int = 2,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced p-Wasserstein distance between point sets a [N, D] and b [M, D] (Rabin et al. 2011).

    Both sets are projected on random unit directions; along each, the 1-D W_p is the L_p distance of
    the quantile functions (taken at common levels when N != M). Returns (mean over directions of W_p^p)^(1/p).
    """
    a, b = a.reshape(len(a), -1).double().cpu(), b.reshape(len(b), -1).double().cpu()
    if a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise BadInputError("Both point sets need at least 2 points of the same dimension.")
    dirs = torch.randn(a.shape[1], projections, generator=generator, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a @ dirs).sort(0).values, (b @ dirs).sort(0).values
    if len(pa) != len(pb):
        levels = torch.linspace(0, 1, max(len(pa), len(pb)), dtype=torch.float64)
        pa, pb = _quantiles(pa, levels), _quantiles(pb, levels)
    return float(((pa - pb).abs() ** p).mean() ** (1 / p))


def _quantiles(sorted_proj: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of each column's empirical quantile function at the given levels."""
    pos = levels * (len(sorted_proj) - 1)
    lo = pos.floor().long().clamp(max=len(sorted_proj) - 2)
    w = (pos - lo)[:, None]
    return (1 - w) * sorted_proj[lo] + w * sorted_proj[lo + 1]
