"""Kernel density estimates on a mesh, against scipy's gaussian_kde and their own integrals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from core.errors import BadInputError
from core.metrics.kde import kde_densities, mesh_axes
from tests.helpers import three_clusters


def test_kde_grid_matches_scipy_row_by_y_and_each_density_integrates_to_one():
    points, labels = three_clusters()
    grid = kde_densities(points, labels, "scott", axes=mesh_axes(points, 120, pad=0.4, tail=0.0))  # all the mass
    assert grid.overall.shape == (120, 120) and sorted(grid.per_class) == [0, 1, 2]
    # Rows follow ys, columns xs: spot-check against scipy at a few grid nodes.
    kde = gaussian_kde(points.T)
    for i, j in [(10, 80), (60, 60), (90, 15)]:
        assert grid.overall[i, j] == pytest.approx(kde([[grid.xs[j]], [grid.ys[i]]])[0], rel=1e-9)
    cell = (grid.xs[1] - grid.xs[0]) * (grid.ys[1] - grid.ys[0])
    assert grid.overall.sum() * cell == pytest.approx(1.0, abs=0.02)
    for c, centre in enumerate([[2.0, -1.0], [-2.0, 1.5], [0.0, 3.0]]):
        density = grid.per_class[c]
        assert density.sum() * cell == pytest.approx(1.0, abs=0.02)
        i, j = np.unravel_index(density.argmax(), density.shape)
        assert abs(grid.xs[j] - centre[0]) < 0.3 and abs(grid.ys[i] - centre[1]) < 0.3


def test_bandwidth_controls_smoothness_and_rules_are_checked():
    points, _ = three_clusters()
    axes = mesh_axes(points, 60)
    narrow = kde_densities(points, None, 0.05, axes=axes)
    wide = kde_densities(points, None, 0.8, axes=axes)
    assert narrow.factor == 0.05 and wide.factor == 0.8
    assert narrow.overall.max() > 2 * wide.overall.max()  # a wider kernel flattens the peaks
    scott = kde_densities(points, None, "scott", 30).factor
    assert scott == pytest.approx(600 ** (-1 / 6))  # in 2-D Scott's and Silverman's rules agree
    assert kde_densities(points, None, "silverman", 30).factor == pytest.approx(scott)
    for bad in ("gaussian", 0.0, -1.0, 11.0):
        with pytest.raises(BadInputError):
            kde_densities(points, None, bad, 30)


def test_kde_refuses_degenerate_inputs_and_skips_thin_classes():
    points, labels = three_clusters(60)
    labels[:2] = 9  # class 9 has two points: no usable covariance, so it is left out
    labels[labels == 9] = 9
    assert 9 not in kde_densities(points, labels, "scott", 20).per_class
    with pytest.raises(BadInputError, match="on a line"):
        kde_densities(np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1), None, "scott", 20)
    for bad in (np.full((10, 2), np.nan), np.zeros((10, 3)), np.zeros((2, 2))):
        with pytest.raises(BadInputError):
            kde_densities(bad, None, "scott", 20)
    with pytest.raises(BadInputError):
        kde_densities(points, None, "scott", 5000)
