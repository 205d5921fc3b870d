"""Distances between point sets (sliced Wasserstein, MMD), against their definitions."""

from __future__ import annotations

import pytest
import torch

from core.errors import BadInputError
from core.metrics.points import median_distance, mmd, sliced_wasserstein
from tests.helpers import gaussian_cloud


def test_sliced_wasserstein_is_zero_on_a_set_and_grows_with_a_shift():
    a = gaussian_cloud(2000, 0)
    assert sliced_wasserstein(a, a) < 1e-12
    same_law = sliced_wasserstein(a, gaussian_cloud(2000, 1))
    shifted = sliced_wasserstein(a, gaussian_cloud(2000, 1, shift=1.0))
    assert same_law < 0.1 < shifted
    # A shift by s along one axis moves every projection on direction d by s * d_x: SW2 = s * sqrt(E d_x^2).
    exact = sliced_wasserstein(a, a + torch.tensor([2.0, 0.0], dtype=torch.float64), projections=4000)
    assert exact == pytest.approx(2.0 * 0.5**0.5, rel=0.03)


def test_mmd_is_zero_on_a_set_positive_on_a_shift_and_checked():
    a = gaussian_cloud(1500, 0)
    assert mmd(a, a) == 0.0
    same, near, far = (
        mmd(a, gaussian_cloud(1500, 1)),
        mmd(a, gaussian_cloud(1500, 1, 0.5)),
        mmd(a, gaussian_cloud(1500, 1, 2.0)),
    )
    assert same < near < far
    assert mmd(a, gaussian_cloud(1500, 1), unbiased=True) < 0.05  # unbiased: two draws of one law are ~0 apart
    assert mmd(a, a + 1.0, bandwidth=1.0) > 0
    with pytest.raises(BadInputError):
        mmd(a, torch.randn(10, 3))
    with pytest.raises(BadInputError):
        mmd(a, a, bandwidth=0.0)
    assert median_distance(torch.ones(5, 2)) == 1.0
    assert median_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_sliced_wasserstein_of_a_shift_is_the_projected_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5000, 2, generator=g)
    # shifting by v moves every 1-D projection by <u, v>; SW2 = sqrt(E_u <u, v>^2) = |v| / sqrt(2) in 2-D
    shifted = a + torch.tensor([3.0, 0.0])
    assert sliced_wasserstein(a, shifted, projections=1000, generator=g) == pytest.approx(3.0 / 2**0.5, rel=0.05)
    assert sliced_wasserstein(a, a.clone(), generator=g) == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_handles_unequal_sizes_and_rejects_bad_sets():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3000, 3, generator=g), torch.randn(1000, 3, generator=g)
    assert sliced_wasserstein(a, b, generator=g) < 0.1
    assert sliced_wasserstein(a, b * 3, generator=g) > 0.5
    with pytest.raises(BadInputError):
        sliced_wasserstein(a, torch.randn(10, 2))
