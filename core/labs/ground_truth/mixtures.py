"""The mixture a person shapes or fits, what the page draws it on, and the toy-lab model learnt from its draws.

- `shaped_mixture`: rows (x, y, std, weight) of a preset or an edited table, with every std scaled and the means
  moved towards or away from their weighted centre.
- `fit_mixture`: a diagonal-covariance mixture fitted by EM to 2-D points (a toy set).
- `mixture_rows`, `moments`, `view_box`, `grid`: the table, the likelihood ODE's prior, the plotted region and
  the density mesh.
- `mixture_cloud`, `model_seconds`: the training data of a toy-lab model (`core.labs.toy.ToyRun`) and how long
  its training takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import torch

from core.data.toy import MIN_POINTS, PointCloud
from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError
from core.labs.toy import ToySettings, training_seconds
from core.limits import max_points

# Rows (x, y, std, weight); the first is the accuracy bench's mixture.
PRESETS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "Four unequal blobs": ((-3.0, 0.0, 0.5, 0.4), (3.0, 2.0, 0.8, 0.3), (0.0, -4.0, 0.4, 0.2), (2.5, -2.0, 0.3, 0.1)),
    "Ring of eight": tuple(
        (round(3 * math.cos(a), 4), round(3 * math.sin(a), 4), 0.3, 1.0) for a in np.arange(8) * 2 * math.pi / 8
    ),
    "Two close modes": ((-1.0, 0.0, 0.5, 1.0), (1.0, 0.0, 0.5, 1.0)),
    "Unbalanced pair": ((-2.0, 0.0, 0.4, 0.9), (2.0, 0.0, 0.4, 0.1)),
    "One Gaussian": ((0.0, 0.0, 1.0, 1.0),),
}
MAX_FIT_POINTS = 10_000
MAX_FIT_COMPONENTS = 16
MAX_COORD, STD_RANGE, MAX_WEIGHT = 1e4, (1e-3, 1e4), 1e6


def shaped_mixture(rows: Sequence[Sequence[float]], spread: float = 1.0, distance: float = 1.0) -> GaussianMixture:
    """Rows (x, y, std, weight) as a mixture, every std times `spread` and the means moved `distance` times as
    far from their weighted centre. Rows of weight 0 are left out (a way to switch a component off)."""
    t = torch.as_tensor(rows, dtype=torch.float64)
    if t.ndim != 2 or t.shape[1] != 4 or not 1 <= len(t) <= 32 or not bool(t.isfinite().all()):
        raise BadInputError("A mixture needs 1 to 32 rows of four numbers: x, y, std, weight.")
    if not (0 < spread <= 10 and 0 <= distance <= 10):
        raise BadInputError("Spread must lie in (0, 10] and distance in [0, 10].")
    lo, hi = STD_RANGE
    if bool((t[:, :2].abs() > MAX_COORD).any()) or bool(((t[:, 2] < lo) | (t[:, 2] > hi)).any()):
        raise BadInputError(f"Means must lie within ±{MAX_COORD:g} and stds between {lo:g} and {hi:g}.")
    if bool(((t[:, 3] < 0) | (t[:, 3] > MAX_WEIGHT)).any()) or not bool((t[:, 3] > 0).any()):
        raise BadInputError(f"Weights must lie between 0 and {MAX_WEIGHT:g}, and not all be 0.")
    t = t[t[:, 3] > 0]
    means, stds, weights = t[:, :2], t[:, 2] * spread, t[:, 3]
    centre = (weights[:, None] * means).sum(0) / weights.sum()
    return GaussianMixture(centre + distance * (means - centre), stds, weights)


def fit_mixture(points: torch.Tensor, components: int, seed: int = 0) -> GaussianMixture:
    """A mixture of `components` Gaussians with per-axis spreads fitted to 2-D points by EM (scikit-learn's
    GaussianMixture, diagonal covariances), on at most MAX_FIT_POINTS of them."""
    from sklearn.mixture import GaussianMixture as EMFit  # a second's import, only when fitting

    if points.ndim != 2 or points.shape[1] != 2:
        raise BadInputError("A mixture is fitted to 2-D points.")
    if not 1 <= components <= MAX_FIT_COMPONENTS or len(points) < 2 * components:
        raise BadInputError(f"Fit 1 to {MAX_FIT_COMPONENTS} components, with at least two points per component.")
    g = torch.Generator().manual_seed(seed)
    if len(points) > MAX_FIT_POINTS:
        points = points[torch.randperm(len(points), generator=g)[:MAX_FIT_POINTS]]
    fit = EMFit(components, covariance_type="diag", random_state=seed, reg_covar=1e-4, max_iter=300)
    fit.fit(points.double().numpy())
    return GaussianMixture(
        torch.from_numpy(fit.means_), torch.from_numpy(fit.covariances_).sqrt(), torch.from_numpy(fit.weights_)
    )


def mixture_rows(mix: GaussianMixture) -> list[list[float]]:
    """(x, y, std, weight) rows of a mixture (std: the RMS of its per-axis stds), for the page's table."""
    stds = (mix.stds**2).mean(1).sqrt()
    return [[*m.tolist(), float(s), float(w)] for m, s, w in zip(mix.means, stds, mix.weights, strict=True)]


def moments(mix: GaussianMixture) -> tuple[torch.Tensor, float]:
    """The mixture's mean [2] and average per-axis variance (the likelihood ODE's prior)."""
    mean = (mix.weights[:, None] * mix.means).sum(0)
    second = (mix.weights[:, None] * (mix.stds**2 + (mix.means - mean) ** 2)).sum(0)
    return mean, float(second.mean())


def view_box(mix: GaussianMixture, pad: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis bounds [2] and [2] that hold every component to `pad` of its stds."""
    lo = (mix.means - pad * mix.stds).min(0).values
    hi = (mix.means + pad * mix.stds).max(0).values
    return lo, hi


def grid(lo: Sequence[float], hi: Sequence[float], size: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A size x size mesh: its x and y axes and its points [size^2, 2] (row-major: y outer, x inner)."""
    if not 2 <= size <= 200:
        raise BadInputError("A density grid has 2 to 200 points a side.")
    xs, ys = np.linspace(lo[0], hi[0], size), np.linspace(lo[1], hi[1], size)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))


# ---- a toy-lab model learnt from the mixture ------------------------------------------------------------------


def mixture_cloud(mix: GaussianMixture, n: int, seed: int = 0) -> PointCloud:
    """n training points drawn from the mixture, as the toy lab's data: a `ToyRun` trains on it."""
    most = max_points()
    if not MIN_POINTS <= n <= most:
        raise BadInputError(f"Train on {MIN_POINTS} to {most:,} points.")

    def fresh(m: int, g: torch.Generator) -> torch.Tensor:
        return mix.sample(m, g)[0].float()

    key = json.dumps(["ground-truth", mixture_rows(mix), n, seed])
    return PointCloud(
        points=fresh(n, torch.Generator().manual_seed(seed)), key=key, title="the mixture", fresh=fresh, mixture=mix
    )


def model_seconds(steps: int) -> float:
    """About how long a toy-lab model at default settings trains `steps` steps on this server; a step costs the
    same whatever the training set's size (one batch)."""
    return training_seconds(ToySettings(), 2, steps)
