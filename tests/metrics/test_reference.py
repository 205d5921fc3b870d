"""The reference band a model's distance is read against (core/metrics/reference.py): fresh draws of the data at
the model's own sample sizes, repeated; checked against a direct computation and against a perfect model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics.images import frechet_distance, frechet_reference_band
from core.metrics.points import sliced_wasserstein
from core.metrics.reference import ReferenceBand, reference_bands


def _gaussian(m: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(m, 2, generator=g, dtype=torch.float64)


def _sw2(a: torch.Tensor, b: torch.Tensor) -> float:
    return sliced_wasserstein(a, b, projections=64, generator=torch.Generator().manual_seed(0))


def test_each_repeat_compares_fresh_sets_of_exactly_the_given_sizes():
    sizes = []

    def draw(m: int, g: torch.Generator) -> torch.Tensor:
        sizes.append(m)
        return _gaussian(m, g)

    bands = reference_bands(draw, (300, 500), {"sw2": _sw2, "mean gap": lambda a, b: float(a.mean() - b.mean())})
    assert sizes == [300, 500] * 10 and set(bands) == {"sw2", "mean gap"}
    band = bands["sw2"]
    assert band.sizes == (300, 500) and len(band.values) == 10
    g = torch.Generator().manual_seed(0)  # the same stream, by hand
    direct = [_sw2(_gaussian(300, g), _gaussian(500, g)) for _ in range(10)]
    assert band.values == pytest.approx(direct, abs=0)
    # Another size is another reference: SW2 between two sets shrinks like n^(-1/2), so a band drawn at a tenth of
    # the size lies well above (this is what a floor of the wrong size got wrong).
    small = reference_bands(_gaussian, (30, 50), {"sw2": _sw2})["sw2"]
    assert small.low > band.high


def test_a_fixed_reference_is_compared_as_it_is_and_a_wrong_size_is_refused():
    reference = _gaussian(400, torch.Generator().manual_seed(5))
    band = reference_bands(_gaussian, (100, 400), {"sw2": _sw2}, repeats=4, seed=3, reference=reference)["sw2"]
    g = torch.Generator().manual_seed(3)
    assert band.values == pytest.approx([_sw2(_gaussian(100, g), reference) for _ in range(4)], abs=0)
    with pytest.raises(ValueError, match="400 rows, not 399"):
        reference_bands(_gaussian, (100, 399), {"sw2": _sw2}, reference=reference)
    with pytest.raises(ValueError, match="Drew 99"):
        reference_bands(lambda m, g: _gaussian(m - 1, g), (100, 100), {"sw2": _sw2})


def test_the_band_spans_the_middle_of_the_repeats_and_says_what_it_is():
    band = ReferenceBand(what="two fresh data sets", sizes=(2000, 2000), values=tuple(float(v) for v in range(11)))
    assert (band.low, band.mean, band.high) == (0.0, 5.0, 10.0)  # the range of the draws
    assert band.span(1) == "0.0–10.0"
    assert band.describe() == "two fresh data sets (2,000 each), range of 11 draws"
    other = ReferenceBand(what="digits", sizes=(1000, 10_000), values=(1.0, 2.0))
    assert other.describe() == "digits (1,000 vs 10,000), range of 2 draws"


def test_a_perfect_models_distance_lies_in_the_band_where_one_fresh_draw_often_lies_above_it():
    """A 'model' that samples the data law itself, measured as the pages measure one (its n samples against one
    draw of n fresh points), each time with a band of its own seed: inside it 9 times in 11 on average, below it
    once in 11. One pair of fresh sets (the old floor) lay above its value about half the time, which read as
    the model beating the data."""
    n, inside, below, under_floor = 500, [], [], []
    for seed in range(40):
        band = reference_bands(_gaussian, (n, n), {"sw2": _sw2}, seed=seed)["sw2"]
        g = torch.Generator().manual_seed(1000 + seed)
        samples, fresh, other = _gaussian(n, g), _gaussian(n, g), _gaussian(n, g)
        value = _sw2(samples, fresh)
        inside.append(band.low <= value <= band.high)
        below.append(value < band.low)
        under_floor.append(value < _sw2(other, fresh))
    assert np.mean(inside) >= 0.65 and np.mean(below) <= 0.2
    assert np.mean(under_floor) >= 0.3


def test_the_frechet_band_draws_real_rows_against_the_whole_reference():
    rng = np.random.default_rng(0)
    pool, reference = rng.normal(size=(3000, 4)), rng.normal(size=(2000, 4))
    band = frechet_reference_band(pool, reference, 200, repeats=5, seed=7, what="real digits")
    assert band.sizes == (200, 2000) and band.describe().startswith("real digits (200 vs 2,000)")
    g = torch.Generator().manual_seed(7)
    direct = [frechet_distance(pool[torch.randperm(3000, generator=g)[:200].numpy()], reference) for _ in range(5)]
    assert band.values == pytest.approx(direct, abs=0)
    # FD is biased upwards at small n: the band of 50 samples lies above the band of 1,000
    assert (
        frechet_reference_band(pool, reference, 50, repeats=5).low > frechet_reference_band(pool, reference, 1000).high
    )
