"""Couplings for flow matching (core/diffusion/couplings.py) and Gaussian-to-Gaussian OT in closed form
(core/diffusion/gaussian_ot.py): exact assignments against brute force, Sinkhorn against exact OT and a plain
implementation, crossings against a direct segment test, the Bures distance against scipy, and minibatch OT
approaching the closed-form map."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from core.diffusion.couplings import (
    couple,
    crossings,
    independent,
    minibatch_ot,
    minibatch_ot_study,
    ot_assignment,
    sinkhorn,
    sinkhorn_plan,
    squared_costs,
    transport_cost,
)
from core.diffusion.gaussian_ot import Gaussian, ot_map, psd_sqrt, w2, w2_squared
from core.errors import BadInputError

F64 = torch.float64
SOURCE = Gaussian.of([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]])
TARGET = Gaussian.of([2.0, -1.0], [[0.4, -0.1], [-0.1, 2.0]])


def draws(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return SOURCE.sample(n, g), TARGET.sample(n, g)


# ---- exact minibatch OT -----------------------------------------------------------------------------------------


def test_minibatch_ot_is_the_brute_force_optimum_and_never_costs_more_than_independent():
    for seed in range(5):
        x, y = draws(6, seed)
        best = min(transport_cost(x, y[list(p)]) for p in itertools.permutations(range(6)))
        x_ot, y_ot = minibatch_ot(x, y)
        assert transport_cost(x_ot, y_ot) == pytest.approx(best, rel=1e-12)
        assert torch.equal(x_ot, x) and sorted(y_ot[:, 0].tolist()) == sorted(y[:, 0].tolist())  # a permutation
    for seed, n in itertools.product(range(3), (2, 17, 128)):
        x, y = draws(n, seed)
        assert transport_cost(*minibatch_ot(x, y)) <= transport_cost(*independent(x, y)) + 1e-12


def test_exact_assignments_are_cyclically_monotone_for_every_two_pairs():
    """|x_i - y_i|^2 + |x_j - y_j|^2 <= |x_i - y_j|^2 + |x_j - y_i|^2, i.e. <x_i - x_j, y_i - y_j> >= 0; so two
    optimal straight paths never meet at the same time (see the module's docstring)."""
    x, y = draws(64, 7)
    y = y[ot_assignment(x, y)]
    c = squared_costs(x, y)
    swapped = c.diagonal()[:, None] + c.diagonal()[None, :] - c - c.T  # own costs minus swapped costs, [i, j]
    assert float(swapped.max()) <= 1e-10
    inner = (x[:, None] - x[None]).mul(y[:, None] - y[None]).sum(-1)
    assert float(inner.min()) >= -1e-10


def test_optimal_straight_paths_can_cross_as_segments():
    """Not a theorem for the squared cost: this optimal pairing's segments cross (at different times)."""
    x = torch.tensor([[0.0, 0.0], [5.0, -1.0]], dtype=F64)
    y = torch.tensor([[10.0, 0.0], [14.0, 1.0]], dtype=F64)
    assert ot_assignment(x, y).tolist() == [0, 1]
    assert transport_cost(x, y) * 2 == pytest.approx(185) and transport_cost(x, y.flip(0)) * 2 == pytest.approx(223)
    assert crossings(x, y) == 1.0


# ---- crossings ----------------------------------------------------------------------------------------------------


def crossed_directly(p: np.ndarray, q: np.ndarray) -> float:
    """The share of crossing pairs by solving p_i + a (q_i - p_i) = p_j + b (q_j - p_j) for (a, b) in (0, 1)^2."""
    n, hits = len(p), 0
    for i, j in itertools.combinations(range(n), 2):
        m = np.stack([q[i] - p[i], -(q[j] - p[j])], 1)
        if abs(np.linalg.det(m)) < 1e-14:
            continue
        a, b = np.linalg.solve(m, p[j] - p[i])
        hits += bool(0 < a < 1 and 0 < b < 1)
    return hits / (n * (n - 1) / 2)


def test_crossings_match_a_direct_segment_test_and_fall_under_ot():
    x, y = draws(40, 3)
    assert crossings(x, y) == pytest.approx(crossed_directly(x.numpy(), y.numpy()), abs=1e-12)
    x_ot, y_ot = minibatch_ot(x, y)
    assert crossings(x_ot, y_ot) == pytest.approx(crossed_directly(x_ot.numpy(), y_ot.numpy()), abs=1e-12)
    x, y = draws(200, 4)
    independent_share, ot_share = crossings(x, y), crossings(*minibatch_ot(x, y))
    assert independent_share > 0.2 and ot_share < independent_share / 3
    # a subsample of at most max_paths paths, drawn with the generator
    x, y = draws(500, 5)
    one = crossings(x, y, max_paths=100, generator=torch.Generator().manual_seed(0))
    assert one == crossings(x, y, max_paths=100, generator=torch.Generator().manual_seed(0)) and 0 < one < 1
    with pytest.raises(BadInputError, match="2-D"):
        crossings(torch.zeros(4, 3), torch.zeros(4, 3))


# ---- Sinkhorn -----------------------------------------------------------------------------------------------------


def plain_sinkhorn(cost: np.ndarray, reg: float, iterations: int = 5000) -> np.ndarray:
    """Cuturi's scaling iterations u = a / K v, v = b / K^T u with K = exp(-C / reg), in plain numbers."""
    n, m = cost.shape
    k = np.exp(-cost / reg)
    u, v = np.ones(n), np.ones(m)
    for _ in range(iterations):
        u = (1 / n) / (k @ v)
        v = (1 / m) / (k.T @ u)
    return u[:, None] * k * v[None, :]


def test_sinkhorn_plan_matches_the_plain_iterations_where_they_are_stable():
    x, y = draws(24, 8)
    c = squared_costs(x, y)
    reg = 0.3 * float(c.median())
    np.testing.assert_allclose(sinkhorn_plan(c, reg).numpy(), plain_sinkhorn(c.numpy(), reg), rtol=1e-7, atol=1e-12)


def test_sinkhorn_has_uniform_marginals_and_its_cost_falls_to_exact_ot_as_reg_falls():
    n = 32
    x, y = draws(n, 9)
    c = squared_costs(x, y)
    exact = transport_cost(*minibatch_ot(x, y))
    costs = []
    for reg in (1.0, 0.1, 0.01, 1e-3, 1e-5):  # relative to the median cost; the smallest would underflow exp(-C/reg)
        plan = sinkhorn_plan(c, reg * float(c.median()))
        assert bool(plan.isfinite().all()) and float(plan.min()) >= 0
        torch.testing.assert_close(plan.sum(1), torch.full((n,), 1 / n, dtype=F64), rtol=0, atol=1e-6 / n)
        torch.testing.assert_close(plan.sum(0), torch.full((n,), 1 / n, dtype=F64), rtol=0, atol=1e-6 / n)
        costs.append(float((plan * c).sum()))
    assert all(a > b for a, b in itertools.pairwise(costs))  # falls as the regularisation falls
    assert costs[-1] >= exact - 1e-9  # every plan with these marginals costs at least the optimum
    assert costs[-1] - exact < 1e-6 * exact and costs[0] - exact > 0.1 * exact


def test_sinkhorn_pairing_is_seeded_and_becomes_the_exact_assignment():
    x, y = draws(32, 10)
    a = sinkhorn(x, y, 0.05, torch.Generator().manual_seed(3))[1]
    assert torch.equal(a, sinkhorn(x, y, 0.05, torch.Generator().manual_seed(3))[1])
    assert torch.equal(sinkhorn(x, y, 1e-5, torch.Generator().manual_seed(3))[1], minibatch_ot(x, y)[1])
    loose = transport_cost(*sinkhorn(x, y, 0.5, torch.Generator().manual_seed(3)))
    assert transport_cost(*minibatch_ot(x, y)) < loose < transport_cost(x, y) * 1.2


def test_couple_dispatches_by_name():
    x, y = draws(16, 11)
    assert torch.equal(couple("independent", x, y)[1], y)
    assert torch.equal(couple("minibatch_ot", x, y)[1], minibatch_ot(x, y)[1])
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(couple("sinkhorn", x, y, reg=0.1, generator=g())[1], sinkhorn(x, y, 0.1, g())[1])
    with pytest.raises(BadInputError, match="Unknown coupling"):
        couple("nearest", x, y)
    with pytest.raises(BadInputError, match="same shape"):
        couple("independent", x, y[:3])


# ---- Gaussian to Gaussian -----------------------------------------------------------------------------------------


def bures_by_scipy(m1, s1, m2, s2) -> float:
    root = scipy.linalg.sqrtm(s2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(root @ s1 @ root))))


def random_gaussian(d: int, g: torch.Generator) -> Gaussian:
    a = torch.randn(d, d, generator=g, dtype=F64)
    return Gaussian.of(torch.randn(d, generator=g, dtype=F64), a @ a.T + 0.1 * torch.eye(d, dtype=F64))


def test_w2_between_gaussians_matches_scipy_and_the_map_is_symmetric_positive_definite():
    g = torch.Generator().manual_seed(0)
    for d in (1, 2, 3, 5):
        a, b = random_gaussian(d, g), random_gaussian(d, g)
        expected = bures_by_scipy(a.mean.numpy(), a.cov.numpy(), b.mean.numpy(), b.cov.numpy())
        assert w2_squared(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert w2(a, b) == pytest.approx(math.sqrt(expected), rel=1e-9)
        assert w2_squared(a, a) == pytest.approx(0.0, abs=1e-10)
        t = ot_map(a, b)
        torch.testing.assert_close(t.matrix, t.matrix.T, rtol=0, atol=0)
        assert float(torch.linalg.eigvalsh(t.matrix).min()) > 0
        torch.testing.assert_close(t.matrix @ a.cov @ t.matrix, b.cov, rtol=1e-9, atol=1e-10)  # A S1 A = S2
        torch.testing.assert_close(t(a.mean[None])[0], b.mean)
    root = psd_sqrt(SOURCE.cov)
    torch.testing.assert_close(root @ root, SOURCE.cov)
    torch.testing.assert_close(torch.from_numpy(np.real(scipy.linalg.sqrtm(SOURCE.cov.numpy()))), root)


def test_in_one_dimension_the_map_is_the_quantile_map():
    a, b = Gaussian.of([1.0], [[4.0]]), Gaussian.of([-2.0], [[0.25]])
    assert w2_squared(a, b) == pytest.approx((1 + 2) ** 2 + (2 - 0.5) ** 2, rel=1e-12)
    u = torch.tensor([0.01, 0.2, 0.5, 0.9, 0.999], dtype=F64)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    x = 1.0 + 2.0 * normal.icdf(u)
    quantile = -2.0 + 0.5 * normal.icdf(normal.cdf((x - 1.0) / 2.0))  # F_b^{-1}(F_a(x))
    torch.testing.assert_close(ot_map(a, b)(x[:, None])[:, 0], quantile, rtol=1e-12, atol=1e-12)


def test_the_map_pushes_the_source_onto_the_target_at_the_w2_cost_and_beats_another_transport_map():
    n = 200_000
    x = SOURCE.sample(n, torch.Generator().manual_seed(0))
    t = ot_map(SOURCE, TARGET)
    y = t(x)
    se_mean = (TARGET.cov.diagonal() / n).sqrt()
    assert bool(((y.mean(0) - TARGET.mean).abs() < 4 * se_mean).all())
    assert float((torch.cov(y.T) - TARGET.cov).abs().max()) < 0.02
    cost = (y - x).pow(2).sum(1)
    assert float(cost.mean()) == pytest.approx(w2_squared(SOURCE, TARGET), abs=4 * float(cost.std()) / math.sqrt(n))
    # another map onto the target, S2^{1/2} R S1^{-1/2} with R a rotation, also pushes the law onto it, at more cost
    angle = torch.tensor(0.7, dtype=F64)
    rot = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    other = psd_sqrt(TARGET.cov) @ rot @ psd_sqrt(SOURCE.cov, inverse=True)
    torch.testing.assert_close(other @ SOURCE.cov @ other.T, TARGET.cov)
    y_other = TARGET.mean + x @ other.T
    assert float((y_other - x).pow(2).sum(1).mean()) > float(cost.mean()) + 0.1


def test_minibatch_ot_approaches_the_closed_form_map_as_the_batch_grows():
    rows = minibatch_ot_study(SOURCE, TARGET, sizes=(16, 64, 256, 1024), points=1024, seed=0)
    assert [r.batch for r in rows] == [16, 64, 256, 1024]
    pair = [r.pair_error for r in rows]
    assert all(a > 1.3 * b for a, b in itertools.pairwise(pair))  # falls at every step
    assert pair[-1] < 0.25 * pair[0]
    mean_map = [r.mean_map_error for r in rows]
    assert mean_map[0] > 2 * mean_map[2] and mean_map[-1] < 0.3 * mean_map[0]
    # a batch of one is the independent coupling: E|y - T(x)|^2 = tr S2 + tr A S1 A = 2 tr S2
    single = minibatch_ot_study(SOURCE, TARGET, sizes=(1,), points=2000, seed=1)[0]
    assert single.pair_error == pytest.approx(math.sqrt(2 * float(torch.trace(TARGET.cov))), rel=0.05)
