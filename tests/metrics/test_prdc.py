"""Precision, recall, density and coverage (core/metrics/prdc.py): balls worked out by hand on a line, an
independent double-loop implementation, the cases whose answers are known exactly, and the bad inputs."""

from __future__ import annotations

import math
import re
from dataclasses import astuple

import numpy as np
import pytest

from core.errors import BadInputError
from core.metrics import prdc as prdc_module
from core.metrics.prdc import PRDC, prdc


def line(*xs: float) -> np.ndarray:
    """Points on a line, as features [N, 1]."""
    return np.array(xs, dtype=np.float64)[:, None]


def test_points_on_a_line_with_k_1_against_balls_worked_out_by_hand():
    # k = 1: real -10, 0, 1, 3 have radii 10, 1, 1, 2: balls [-20, 0], [-1, 1], [0, 2], [1, 5].
    # Fakes 0.5, 4, 5, 20 have radii 3.5, 1, 1, 15: balls [-3, 4], [3, 5], [4, 6], [5, 35].
    # Fakes in real balls: 0.5 in two, 4 in one ([1, 5]), 5 in one (on [1, 5]'s edge: balls are closed), 20 in none.
    # Reals in fake balls: -10 in none, 0, 1 and 3 in [-3, 4]. Real balls holding a fake: all but -10's.
    found = prdc(line(-10, 0, 1, 3), line(0.5, 4, 5, 20), k=1)
    assert (found.precision, found.recall, found.density, found.coverage) == (0.75, 0.75, 1.0, 0.75)
    # SEs by hand: indicators (1, 1, 1, 0) have sample std 1/2, over sqrt(4); counts (2, 1, 1, 0) have std sqrt(2/3)
    assert (found.precision_se, found.recall_se, found.coverage_se) == (0.25, 0.25, 0.25)
    assert found.density_se == pytest.approx(math.sqrt(2 / 3) / 2, abs=1e-15)
    assert (found.k, found.real, found.fake) == (1, 4, 4)
    # Open balls would leave fake 5 outside [1, 5]: precision 1/2 and density 3/4, not what the papers define
    assert prdc(line(-10, 0, 1, 3), line(0.5, 4, 5.001, 20), k=1).precision == 0.5


def test_points_on_a_line_with_k_2_take_the_second_neighbour():
    # k = 2: real 0, 1, 2, 4, 8 have radii 2, 1, 2, 3, 6: balls [-2, 2], [0, 2], [0, 4], [1, 7], [2, 14].
    # Fakes 1.5, 3, 9, 10 (radii 7.5, 6, 6, 7) lie in 4, 3, 1 and 1 real balls: density 9 / (2 * 4).
    found = prdc(line(0, 1, 2, 4, 8), line(1.5, 3, 9, 10), k=2)
    assert (found.precision, found.recall, found.density, found.coverage) == (1.0, 1.0, 9 / 8, 1.0)
    assert found.density_se == pytest.approx(np.std([2, 1.5, 0.5, 0.5], ddof=1) / 2, abs=1e-15)
    assert (found.precision_se, found.recall_se, found.coverage_se) == (0.0, 0.0, 0.0)


def test_a_point_is_left_out_of_its_own_ball_by_index_so_its_duplicates_are_neighbours():
    # k = 2: each real point has two duplicates at distance 0, so every real ball is a single point (radius 0).
    # Fake 0 lies in the three balls at 0, fake 5 in the three at 5, the rest in none.
    found = prdc(line(0, 0, 0, 5, 5, 5), line(0, 1, 5, 6, 7, 8), k=2)
    assert (found.precision, found.density, found.recall, found.coverage) == (1 / 3, 0.5, 1.0, 1.0)


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The four measures and their SEs straight from the definitions, with plain loops."""

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))

    def radii(points: np.ndarray) -> list[float]:
        out = []
        for i, p in enumerate(points):
            others = sorted(distance(p, q) for j, q in enumerate(points) if j != i)
            out.append(others[k - 1])
        return out

    def mean_se(values: list[float]) -> tuple[float, float]:
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        return mean, std / math.sqrt(n)

    r, f = radii(real), radii(fake)
    counts = [sum(distance(y, x) <= r[i] for i, x in enumerate(real)) for y in fake]
    reached = [any(distance(x, y) <= f[j] for j, y in enumerate(fake)) for x in real]
    covered = [any(distance(x, y) <= r[i] for y in fake) for i, x in enumerate(real)]
    out = {}
    for name, values in (
        ("precision", [float(c > 0) for c in counts]),
        ("recall", [float(v) for v in reached]),
        ("density", [c / k for c in counts]),
        ("coverage", [float(v) for v in covered]),
    ):
        out[name], out[f"{name}_se"] = mean_se(values)
    return out


@pytest.mark.parametrize("k", [1, 3, 5])
def test_agrees_with_a_double_loop_implementation(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(50, 4))
    fake = rng.normal(0.8, 1.0, size=(43, 4))  # shifted: every measure strictly between its extremes
    found = prdc(real, fake, k=k)
    expected = brute_force(real, fake, k)
    for name, value in expected.items():
        assert getattr(found, name) == pytest.approx(value, abs=1e-12), name
    assert 0 < found.precision < 1 and 0 < found.recall < 1 and 0 < found.coverage < 1
    assert (found.k, found.real, found.fake) == (k, 50, 43)


def test_a_set_against_itself():
    # Every point is in its own ball: precision, recall and coverage are 1. Each real ball holds its centre and its
    # k nearest neighbours (closed balls, no ties), so the counts sum to N (k + 1) and density is (k + 1) / k.
    points = np.random.default_rng(0).normal(size=(200, 6))
    for k in (1, 5):
        found = prdc(points, points, k=k)
        assert (found.precision, found.recall, found.coverage) == (1.0, 1.0, 1.0)
        assert (found.precision_se, found.recall_se, found.coverage_se) == (0.0, 0.0, 0.0)
        assert found.density == pytest.approx((k + 1) / k, abs=1e-12)
        assert found.density_se > 0  # a point may lie in more or fewer balls than k + 1 (hubs)


def test_sets_far_apart_score_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(60, 3)), rng.normal(size=(40, 3)) + 1000.0
    found = prdc(real, fake)
    assert astuple(found)[:8] == (0.0,) * 8 and (found.real, found.fake) == (60, 40)


def test_independent_draws_of_one_law_meet_naeems_expectations():
    # Naeem et al. 2020: for fakes from the data's law E[density] = 1 and E[coverage] = 1 - C(N-1, k) / C(N+M-1, k)
    n, m, k, draws = 300, 200, 5, 20
    rng = np.random.default_rng(2)
    found = [prdc(rng.normal(size=(n, 3)), rng.normal(size=(m, 3)), k) for _ in range(draws)]
    density, coverage = np.array([f.density for f in found]), np.array([f.coverage for f in found])
    expected_coverage = 1 - math.comb(n - 1, k) / math.comb(n + m - 1, k)  # 0.926
    assert abs(density.mean() - 1) < 4 * density.std(ddof=1) / math.sqrt(draws)
    assert abs(coverage.mean() - expected_coverage) < 4 * coverage.std(ddof=1) / math.sqrt(draws)
    # and each draw's SE is about the spread of the measure from draw to draw (the fakes are what varies most)
    assert np.mean([f.density_se for f in found]) == pytest.approx(density.std(ddof=1), rel=0.5)


def clusters(rng: np.random.Generator, per: int) -> np.ndarray:
    """Four tight clusters 100 apart in the plane, `per` points each, one after another."""
    centres = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], dtype=np.float64)
    return np.concatenate([c + rng.normal(size=(per, 2)) for c in centres])


def test_a_model_that_drops_modes_keeps_precision_and_loses_recall_and_coverage():
    real = clusters(np.random.default_rng(3), 50)
    found = prdc(real, real[:50])  # the samples are the data of one mode out of four
    assert found.precision == 1.0 and found.recall == 0.25 and found.coverage == 0.25
    assert found.density > 0.5
    fresh = prdc(real, clusters(np.random.default_rng(4), 50))  # every mode, fresh draws
    assert fresh.recall > 0.8 and fresh.coverage > 0.8


def test_a_model_that_spreads_too_wide_keeps_recall_and_loses_precision():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(400, 8))
    wide, narrow = prdc(real, 3 * rng.normal(size=(400, 8))), prdc(real, 0.3 * rng.normal(size=(400, 8)))
    assert wide.recall > 0.95 and wide.precision < 0.2 and wide.density < 0.1 and wide.coverage < 0.2
    assert narrow.precision > 0.95 and narrow.recall < 0.1 and narrow.density > 2  # crowding the densest region


def test_blocks_of_any_size_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(70, 5)), rng.normal(size=(45, 5))
    monkeypatch.setattr(prdc_module, "BLOCK_ELEMENTS", 10**9)
    whole = prdc(real, fake, k=3)
    for elements in (1, 7, 139, 1000):  # a row at a time, and blocks that end mid-set
        monkeypatch.setattr(prdc_module, "BLOCK_ELEMENTS", elements)
        assert prdc(real, fake, k=3) == whole


def test_no_block_of_distances_is_larger_than_the_budget(monkeypatch):
    shapes, distances = [], prdc_module._distances

    def recorded(a, b):
        shapes.append((len(a), len(b)))
        return distances(a, b)

    monkeypatch.setattr(prdc_module, "_distances", recorded)
    rng = np.random.default_rng(7)
    prdc(rng.normal(size=(3000, 4)), rng.normal(size=(2500, 4)))
    assert len(shapes) > 3 and max(r * c for r, c in shapes) <= prdc_module.BLOCK_ELEMENTS
    assert prdc_module.BLOCK_ELEMENTS * 8 <= 40e6  # float64: 10,000 x 10,000 never lies in memory at once


def test_read_only_features_are_read_without_a_copy_of_them_changing():
    real = np.random.default_rng(8).normal(size=(20, 3))
    real.setflags(write=False)  # the pages' cached features are read-only
    before = real.copy()
    assert isinstance(prdc(real, real + 0.1), PRDC)
    assert np.array_equal(real, before)


@pytest.mark.parametrize(
    ("real", "fake", "k", "sentence"),
    [
        (
            np.zeros((5, 2)),
            np.ones((9, 2)),
            5,
            "PRDC with k = 5 needs at least 6 points in each set (the real set has 5).",
        ),
        (
            np.zeros((9, 2)),
            np.ones((2, 2)),
            2,
            "PRDC with k = 2 needs at least 3 points in each set (the fake set has 2).",
        ),
        (
            np.zeros((9, 2)),
            np.ones((9, 3)),
            5,
            "The real and fake features must have the same dimension (real has 2, fake 3).",
        ),
        (np.zeros(9), np.ones((9, 1)), 5, "The real features must be an array [N, D] with D >= 1 (got shape (9,))."),
        (
            np.zeros((9, 2)),
            np.array([[0.0, np.nan]] * 9),
            5,
            "The fake features hold non-finite values (NaN or infinity); PRDC needs finite ones.",
        ),
        (
            np.array([[np.inf, 0.0]] * 9),
            np.zeros((9, 2)),
            5,
            "The real features hold non-finite values (NaN or infinity); PRDC needs finite ones.",
        ),
        (np.array([["a", "b"]] * 9), np.zeros((9, 2)), 5, "The real features must be numbers, an array [N, D]."),
        (np.zeros((9, 2)), np.ones((9, 2)), 0, "PRDC's k must be a whole number of neighbours, at least 1 (got 0)."),
    ],
)
def test_bad_input_is_refused_with_a_sentence(real, fake, k, sentence):
    with pytest.raises(BadInputError, match=f"^{re.escape(sentence)}$"):
        prdc(real, fake, k=k)
