"""The mixture a person shapes or fits, and the data of a model learnt from it
(core/labs/ground_truth/mixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import BadInputError
from core.labs.ground_truth import mixtures


def test_shaped_mixture_scales_spreads_and_distances_about_the_weighted_centre():
    rows = [(-1.0, 0.0, 0.5, 3.0), (3.0, 0.0, 0.2, 1.0)]  # weighted centre (0, 0)
    mix = mixtures.shaped_mixture(rows, spread=2.0, distance=0.5)
    torch.testing.assert_close(mix.means, torch.tensor([[-0.5, 0.0], [1.5, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(mix.stds[:, 0], torch.tensor([1.0, 0.4], dtype=torch.float64))
    assert len(mixtures.shaped_mixture([*rows, (5.0, 5.0, 1.0, 0.0)]).weights) == 2  # weight 0: switched off
    for bad in (
        [(0, 0, -1, 1)],
        [(0, 0, 1)],
        [],
        [(0, 0, 1, float("nan"))],
        [(0, 0, 1, 1e308), (1, 0, 1, 1e308)],
        [(1e200, 0, 1, 1)],
        [(0, 0, 1e-300, 1)],
        [(0, 0, 1, 0)],
    ):
        with pytest.raises(BadInputError):
            mixtures.shaped_mixture(bad)


def test_a_fitted_mixture_recovers_the_law_its_points_came_from(mix):
    x, _ = mix.sample(4000, torch.Generator().manual_seed(1))
    fit = mixtures.fit_mixture(x.float(), 4, seed=0)
    order = fit.means[:, 0].argsort()
    truth = mix.means[:, 0].argsort()
    assert (fit.means[order] - mix.means[truth]).abs().max() < 0.1
    assert (fit.weights[order] - mix.weights[truth]).abs().max() < 0.02
    assert (fit.stds[order] - mix.stds[truth]).abs().max() < 0.06
    with pytest.raises(BadInputError):
        mixtures.fit_mixture(x[:5], 4)


def test_rows_moments_view_box_and_grid_of_a_mixture(mix):
    rows = mixtures.mixture_rows(mix)
    assert rows[0] == pytest.approx([-3.0, 0.0, 0.5, 0.4]) and len(rows) == 4
    mean, var = mixtures.moments(mix)
    x, _ = mix.sample(200_000, torch.Generator().manual_seed(5))
    torch.testing.assert_close(mean, x.mean(0), atol=0.02, rtol=0)
    assert var == pytest.approx(float(x.var(0).mean()), rel=0.01)
    lo, hi = mixtures.view_box(mix, pad=3.0)
    assert lo.tolist() == pytest.approx([-4.5, -5.2]) and hi.tolist() == pytest.approx([5.4, 4.4])
    xs, ys, points = mixtures.grid([0.0, 1.0], [2.0, 3.0], 3)
    assert xs.tolist() == [0.0, 1.0, 2.0] and ys.tolist() == [1.0, 2.0, 3.0]
    assert points[:4].tolist() == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [0.0, 2.0]]  # y outer, x inner
    with pytest.raises(BadInputError):
        mixtures.grid([0.0, 0.0], [1.0, 1.0], 1)


def test_a_mixture_cloud_is_a_seeded_draw_of_the_mixture_and_its_key_names_it(mix):
    cloud = mixtures.mixture_cloud(mix, 64, seed=3)
    again = mixtures.mixture_cloud(mix, 64, seed=3)
    assert cloud.points.shape == (64, 2) and torch.equal(cloud.points, again.points) and cloud.key == again.key
    assert cloud.key != mixtures.mixture_cloud(mix, 64, seed=4).key and cloud.mixture is mix
    assert np.isfinite(mixtures.model_seconds(1000)) and mixtures.model_seconds(2000) > mixtures.model_seconds(1000)
    with pytest.raises(BadInputError):
        mixtures.mixture_cloud(mix, 1, seed=0)
