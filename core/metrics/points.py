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


def mmd(
    a: torch.Tensor,
    b: torch.Tensor,
    bandwidth: float | None = None,
    max_points: int = 2000,
    generator: torch.Generator | None = None,
    unbiased: bool = False,
) -> float:
    """Maximum mean discrepancy with a Gaussian (RBF) kernel (Gretton et al. 2012, eq. 3 and 5), as a distance.

    k(x, y) = exp(-|x - y|^2 / (2 h^2)); h is `bandwidth`, or the median distance between the pooled
    points (the median heuristic). MMD^2 = mean k(a, a') + mean k(b, b') - 2 mean k(a, b). The default
    (biased, V-statistic) estimate keeps the diagonals: it is >= 0, exactly 0 for a set with itself, and
    two draws of one law sit at a small positive floor (about sqrt(2 / n)); `unbiased` leaves the
    diagonals out (mean 0 for one law; may dip below 0, then clamped). Returns sqrt(MMD^2). Sets larger
    than `max_points` are subsampled without replacement with `generator`: the cost is quadratic.
    """
    a, b = a.reshape(len(a), -1).double().cpu(), b.reshape(len(b), -1).double().cpu()
    if a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise BadInputError("Both point sets need at least 2 points of the same dimension.")
    if bandwidth is not None and not bandwidth > 0:
        raise BadInputError("The MMD bandwidth must be positive.")
    a, b = _subsample(a, max_points, generator), _subsample(b, max_points, generator)
    if bandwidth is None:
        bandwidth = median_distance(torch.cat([a, b]), generator)
    gamma = 1 / (2 * bandwidth**2)
    n, m = len(a), len(b)
    if unbiased:
        k_aa = (_kernel_sum(a, a, gamma) - n) / (n * (n - 1))
        k_bb = (_kernel_sum(b, b, gamma) - m) / (m * (m - 1))
    else:
        k_aa, k_bb = _kernel_sum(a, a, gamma) / n**2, _kernel_sum(b, b, gamma) / m**2
    k_ab = _kernel_sum(a, b, gamma) / (n * m)
    return float(max(k_aa + k_bb - 2 * k_ab, 0.0) ** 0.5)


KERNEL_ROWS = 256  # rows of a kernel matrix made at once: 2,000 points' full matrices took ~130 MB at once


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, gamma: float) -> float:
    """sum_ij exp(-gamma |x_i - y_j|^2), a block of `KERNEL_ROWS` rows at a time (a server runs several at once)."""
    return sum(
        float(torch.exp(-gamma * torch.cdist(x[i : i + KERNEL_ROWS], y) ** 2).sum())
        for i in range(0, len(x), KERNEL_ROWS)
    )


def median_distance(x: torch.Tensor, generator: torch.Generator | None = None, max_points: int = 1000) -> float:
    """The median distance between distinct points of x (of at most `max_points` of them); 1 if all coincide."""
    x = _subsample(x, max_points, generator)
    d = torch.pdist(x)
    d = d[d > 0]
    return float(d.median()) if len(d) else 1.0


def _subsample(x: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    return x if len(x) <= k else x[torch.randperm(len(x), generator=generator)[:k]]
