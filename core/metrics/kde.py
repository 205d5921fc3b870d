"""Kernel density estimates of 2-D points on a regular grid: overall and per class.

`scipy.stats.gaussian_kde` places a Gaussian on every point with covariance (factor^2 x the data's
covariance); `bandwidth` is that factor's rule ("scott": n^(-1/(d+4)); "silverman": (n (d+2)/4)^(-1/(d+4)),
the same as Scott's in 2-D) or a number. Each class gets its own estimate from its own points, so a class
density integrates to 1 on its own, and the overall density is the estimate from all points together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import BadInputError

MAX_POINTS = 20_000
MAX_GRID = 200
MIN_CLASS_POINTS = 3  # fewer points have no usable covariance


@dataclass(frozen=True)
class Densities:
    xs: np.ndarray  # [nx] grid coordinates along the first latent axis
    ys: np.ndarray  # [ny] along the second
    overall: np.ndarray  # [ny, nx] density of all points (rows follow ys, as plotly's z expects)
    per_class: dict[int, np.ndarray]  # class -> [ny, nx]; classes with too few or collinear points are absent
    factor: float  # the bandwidth factor used for the overall estimate


def bandwidth_rule(bandwidth: str | float) -> str | float:
    if isinstance(bandwidth, str):
        if bandwidth not in ("scott", "silverman"):
            raise BadInputError(f"Bandwidth rule {bandwidth!r}: use 'scott', 'silverman' or a positive number.")
        return bandwidth
    if not 0 < float(bandwidth) <= 10:
        raise BadInputError("A bandwidth factor must be in (0, 10].")
    return float(bandwidth)


def mesh_axes(points: np.ndarray, size: int, pad: float = 0.15, tail: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """`size` coordinates per axis spanning the points' extent (less the `tail` share of strays at each end, so
    a few outliers do not spread the grid thin), grown by `pad` of it on each side."""
    lo, hi = np.quantile(points, tail, axis=0), np.quantile(points, 1 - tail, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return np.linspace(lo[0], hi[0], size), np.linspace(lo[1], hi[1], size)


def _evaluate(points: np.ndarray, mesh: np.ndarray, rule: str | float) -> tuple[np.ndarray, float] | None:
    from scipy.stats import gaussian_kde  # scipy costs ~60 MB: imported only when a density is estimated

    try:
        kde = gaussian_kde(points.T, bw_method=rule)
    except (np.linalg.LinAlgError, ValueError):  # all points on a line (or one point): no 2-D density
        return None
    return kde(mesh), float(kde.factor)


def kde_densities(
    points: np.ndarray,
    labels: np.ndarray | None = None,
    bandwidth: str | float = "scott",
    size: int = 100,
    axes: tuple[np.ndarray, np.ndarray] | None = None,
) -> Densities:
    """Densities of `points` [N, 2] (and of each label's points) on a size x size grid (or on `axes`)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise BadInputError("Densities need finite 2-D points.")
    if not MIN_CLASS_POINTS <= len(points) <= MAX_POINTS:
        raise BadInputError(f"Densities need {MIN_CLASS_POINTS} to {MAX_POINTS:,} points (got {len(points):,}).")
    if not 10 <= size <= MAX_GRID:
        raise BadInputError(f"The density grid has 10 to {MAX_GRID} points per side.")
    rule = bandwidth_rule(bandwidth)
    xs, ys = axes if axes is not None else mesh_axes(points, size)
    gx, gy = np.meshgrid(xs, ys)
    mesh = np.vstack([gx.ravel(), gy.ravel()])
    shape = (len(ys), len(xs))
    overall = _evaluate(points, mesh, rule)
    if overall is None:
        raise BadInputError("The points lie on a line, so they have no 2-D density.")
    per_class: dict[int, np.ndarray] = {}
    if labels is not None:
        labels = np.asarray(labels)
        for c in np.unique(labels):
            members = points[labels == c]
            if len(members) >= MIN_CLASS_POINTS and (found := _evaluate(members, mesh, rule)) is not None:
                per_class[int(c)] = found[0].reshape(shape)
    return Densities(xs=xs, ys=ys, overall=overall[0].reshape(shape), per_class=per_class, factor=overall[1])


def kde_log_density(points: np.ndarray, at: np.ndarray, bandwidth: str | float = "scott") -> np.ndarray:
    """log of the Gaussian KDE of `points` [N, 2] at the points `at` [M, 2] (a density to compare a model's with)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or not MIN_CLASS_POINTS <= len(points) <= MAX_POINTS or not np.isfinite(points).all():
        raise BadInputError(f"A density estimate needs {MIN_CLASS_POINTS} to {MAX_POINTS:,} finite points.")
    from scipy.stats import gaussian_kde  # see _evaluate

    try:
        kde = gaussian_kde(points.T, bw_method=bandwidth_rule(bandwidth))
    except (np.linalg.LinAlgError, ValueError):
        raise BadInputError("The points lie on a line, so they have no 2-D density.") from None
    return kde.logpdf(np.asarray(at, dtype=np.float64).T)
