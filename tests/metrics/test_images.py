"""Image-model metrics: the Frechet distance's bootstrap error and the split-half floor it is read against."""

from __future__ import annotations

import numpy as np

from core.metrics.images import frechet_distance, frechet_distance_se, split_half_distance


def test_bootstrap_error_is_positive_and_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2000, 8))
    _, small_se = frechet_distance_se(rng.normal(size=(100, 8)) + 0.5, reference)
    big_fd, big_se = frechet_distance_se(rng.normal(size=(1600, 8)) + 0.5, reference)
    assert 0 < big_se < small_se / 2  # about 1/sqrt(n): 16x the samples, a quarter of the error
    assert abs(big_fd - 8 * 0.25) < 4 * big_se + 0.05  # the true distance: |shift|^2 = 8 x 0.25


def test_the_split_half_floor_is_small_for_one_law_and_ignores_order():
    rng = np.random.default_rng(1)
    same = rng.normal(size=(1000, 8))
    floor = split_half_distance(same)
    assert 0 < floor < 0.2 and floor == split_half_distance(same)  # seeded: the same halves each time
    assert frechet_distance(same[:500], same[500:] + 1.0) > 20 * floor
