"""Precision, recall, density and coverage: fidelity and diversity of samples read off k-nearest-neighbour balls.

Each point's ball is centred on it with radius the distance to its k-th nearest neighbour within its own set (the
point itself left out). With N real points and M fakes (samples):

- precision (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models"):
  the share of fakes inside at least one real ball (fidelity: samples that look like data);
- recall (same paper): the share of real points inside at least one fake ball (diversity: data the samples reach);
- density (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"):
  (1 / (k M)) sum over fakes of the number of real balls holding it; about 1 when fakes follow the data's law
  (a fresh point lies in k of the N balls on average), above 1 where fakes crowd dense regions of the data;
- coverage (same paper): the share of real points whose own ball holds at least one fake.

Balls are closed (distance <= radius), as in Kynkäänniemi et al.'s definition. All four depend on the set sizes
(coverage most: a real ball holds k of N real points, so M << N fakes seldom land in it): compare values measured
at the same sizes, best N = M, as both papers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import BadInputError

# Distances computed at once, at most: 2^22 float64 = 32 MB a block (with its comparisons, well under 100 MB); a
# set of 10,000 points is read 419 rows at a time instead of as one 800 MB matrix.
BLOCK_ELEMENTS = 2**22


@dataclass(frozen=True, kw_only=True)
class PRDC:
    """The four measures, each with its standard error (see `prdc`), the k of the balls and the set sizes."""

    precision: float
    precision_se: float
    recall: float
    recall_se: float
    density: float
    density_se: float
    coverage: float
    coverage_se: float
    k: int
    real: int
    fake: int


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage (see the module) of fake features [M, D] against real ones [N, D].

    k = 5 is Naeem et al.'s default (Kynkäänniemi et al. use 3). Each set needs at least k + 1 points, finite.

    Standard errors: conditional on the other set, each measure is a mean over one set's points of a per-point
    value: precision of the fakes' indicators (inside some real ball), density of the fakes' counts of real balls
    over k, recall and coverage of the real points' indicators. Each SE is the sample standard deviation (ddof 1)
    of those per-point values over sqrt(the number of points). For precision, recall and density the per-point
    values are independent given the other set; a coverage indicator also depends on its own set's neighbours
    (through its radius), which the formula ignores.

    Distances are computed in float64 from the differences of each pair (torch.cdist without the
    |a|^2 + |b|^2 - 2 a.b shortcut), a block of rows at a time (BLOCK_ELEMENTS): a pair's distance is the same
    bit for bit in whichever block and order it is computed, so which ball holds a point is decided exactly
    (a point that coincides with another is at distance 0), and memory stays bounded whatever N and M.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise BadInputError(f"PRDC's k must be a whole number of neighbours, at least 1 (got {k!r}).")
    k = int(k)
    if real.shape[1] != fake.shape[1]:
        raise BadInputError(
            f"The real and fake features must have the same dimension (real has {real.shape[1]}, fake {fake.shape[1]})."
        )
    for name, points in (("real", real), ("fake", fake)):
        if len(points) < k + 1:
            raise BadInputError(
                f"PRDC with k = {k} needs at least {k + 1} points in each set (the {name} set has {len(points)})."
            )
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)

    real_balls = torch.zeros(len(fake), dtype=torch.float64)  # per fake: the real balls holding it
    in_fake_ball = torch.zeros(len(real), dtype=torch.bool)  # per real point: inside some fake ball
    nearest_fake = torch.full((len(real),), torch.inf, dtype=torch.float64)  # per real point
    for start, block in _blocks(fake, real):  # block[j, i] = |fake[start + j] - real[i]|
        stop = start + len(block)
        real_balls[start:stop] = (block <= real_radii).sum(1, dtype=torch.float64)
        in_fake_ball |= (block <= fake_radii[start:stop, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, block.min(0).values)

    return PRDC(
        **_mean_se("precision", (real_balls > 0).double()),
        **_mean_se("recall", in_fake_ball.double()),
        **_mean_se("density", real_balls / k),
        **_mean_se("coverage", (nearest_fake <= real_radii).double()),
        k=k,
        real=len(real),
        fake=len(fake),
    )


def knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance [N] to its k-th nearest neighbour among the other points of its set [N, D] (itself
    left out by index, so a duplicate of it counts as a neighbour at distance 0); float64 as `prdc` computes it."""
    radii = torch.empty(len(points), dtype=torch.float64)
    for start, block in _blocks(points, points):
        rows = torch.arange(len(block))
        block[rows, start + rows] = torch.inf  # the point itself
        radii[start : start + len(block)] = block.kthvalue(k, dim=1).values
    return radii


def _blocks(rows: torch.Tensor, columns: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, distances [b, len(columns)]) for blocks of b rows, b * len(columns) <= BLOCK_ELEMENTS (b >= 1)."""
    step = max(1, BLOCK_ELEMENTS // len(columns))
    for start in range(0, len(rows), step):
        yield start, _distances(rows[start : start + step], columns)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [len(a), len(b)], each from its own pair's differences (exact, symmetric)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _mean_se(name: str, values: torch.Tensor) -> dict[str, float]:
    """{name: mean of the per-point values, name_se: their sample std (ddof 1) / sqrt(count)}."""
    values = values.numpy()
    return {name: float(values.mean()), f"{name}_se": float(values.std(ddof=1) / np.sqrt(len(values)))}


def _features(points: np.ndarray, name: str) -> torch.Tensor:
    """The array as a float64 tensor [N, D]; a sentence for anything else."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(f"The {name} features must be numbers, an array [N, D].") from None
    if array.ndim != 2 or array.shape[1] == 0:
        raise BadInputError(f"The {name} features must be an array [N, D] with D >= 1 (got shape {array.shape}).")
    if not np.isfinite(array).all():
        raise BadInputError(f"The {name} features hold non-finite values (NaN or infinity); PRDC needs finite ones.")
    return torch.tensor(array)  # a copy: the caller's array may be read-only (cached features)
