"""The exact flow map of a Gaussian mixture (core/diffusion/flow_map.py): the closed-form map of one Gaussian, the
semigroup and consistency properties on a mixture, noise pushed onto the mixture, MeanFlow's average velocity and
its identity, and the error field of a one-step map."""

from __future__ import annotations

import math

import pytest
import torch

from core.diffusion.flow import mixture_velocity
from core.diffusion.flow_map import (
    average_velocity,
    consistency_function,
    error_field,
    exact_flow_map,
    marginal,
    solve_flow_map,
)
from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError
from core.metrics.points import sliced_wasserstein

F64 = torch.float64
MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=F64)
STDS = torch.tensor([0.3, 0.5, 0.2], dtype=F64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
MIX = GaussianMixture(MEANS, STDS, WEIGHTS)


def gaussian_map(mean: torch.Tensor, std: float, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The flow map of N(mean, std^2 I) in closed form. x_t ~ N((1 - t) m, sig_t^2 I), sig_t^2 = (1 - t)^2 std^2 + t^2,
    and the velocity E[eps - x_0 | x_t] = -m + (t - (1 - t) std^2) / sig_t^2 (x_t - (1 - t) m) (the regression of
    eps - x_0 on x_t) is d/dt of m_t + sig_t z for every fixed z, since d sig_t / dt = (t - (1 - t) std^2) / sig_t:
    paths keep their standardised coordinate, x_s = (1 - s) m + sig_s / sig_t (x_t - (1 - t) m)."""
    sig = lambda u: ((1 - u) ** 2 * std**2 + u**2).sqrt()[:, None]  # noqa: E731
    return (1 - s)[:, None] * mean + sig(s) / sig(t) * (x - (1 - t)[:, None] * mean)


def test_one_gaussian_is_carried_by_its_closed_form_map_both_ways_and_per_point():
    mean, std = torch.tensor([1.5, -0.5, 0.25], dtype=F64), 0.3
    one = GaussianMixture(mean[None], torch.tensor([std], dtype=F64))
    g = torch.Generator().manual_seed(0)
    x = 1.5 * torch.randn(300, 3, generator=g, dtype=F64)
    for t, s in [(1.0, 0.0), (0.7, 0.2), (0.0, 1.0), (0.3, 0.9), (0.5, 0.5001)]:
        tt, ss = torch.full((300,), t, dtype=F64), torch.full((300,), s, dtype=F64)
        sol = solve_flow_map(one, x, t, s)
        torch.testing.assert_close(sol.points, gaussian_map(mean, std, x, tt, ss), rtol=0, atol=1e-7)
        assert float(sol.error.max()) <= 1e-8 * abs(s - t) * (1 + 1e-12)  # the stated tolerance
    tt, ss = torch.rand(300, generator=g, dtype=F64), torch.rand(300, generator=g, dtype=F64)  # one time per point
    torch.testing.assert_close(exact_flow_map(one, x, tt, ss), gaussian_map(mean, std, x, tt, ss), rtol=0, atol=1e-7)
    torch.testing.assert_close(exact_flow_map(one, x, tt, tt), x, rtol=0, atol=0)  # no time, no move


def test_the_flow_map_is_a_semigroup_on_a_mixture_in_both_directions():
    g = torch.Generator().manual_seed(1)
    for t, r, s in [(0.9, 0.5, 0.05), (0.1, 0.4, 0.95), (0.6, 0.02, 0.3)]:
        x = marginal(MIX, t).sample(100, g)[0]
        two = exact_flow_map(MIX, exact_flow_map(MIX, x, t, r), r, s)
        torch.testing.assert_close(two, exact_flow_map(MIX, x, t, s), rtol=0, atol=1e-6)
    x = marginal(MIX, 0.8).sample(100, g)[0]
    r = 0.8 * torch.rand(100, generator=g, dtype=F64)  # a stop of its own per point
    two = exact_flow_map(MIX, exact_flow_map(MIX, x, 0.8, r), r, 0.0)
    torch.testing.assert_close(two, consistency_function(MIX, x, 0.8), rtol=0, atol=1e-6)


def test_the_ideal_consistency_function_is_constant_along_ode_paths():
    g = torch.Generator().manual_seed(2)
    x = marginal(MIX, 0.8).sample(100, g)[0]
    f = consistency_function(MIX, x, 0.8)
    for later in (0.3, 0.95):
        moved = exact_flow_map(MIX, x, 0.8, later)
        torch.testing.assert_close(consistency_function(MIX, moved, later), f, rtol=0, atol=1e-6)
    # and it is not the denoiser: E[x_0 | x_t] = x_t - t v is a shrunk answer, far from f at t = 0.8
    t = torch.full((100,), 0.8, dtype=F64)
    posterior_mean = x - 0.8 * mixture_velocity(MEANS, STDS, WEIGHTS, x, t)
    assert float((posterior_mean - f).norm(dim=1).mean()) > 0.05


def test_the_marginal_is_the_blurred_mixture_seen_in_flow_coordinates():
    """x_t = (1 - t) (x_0 + sigma eps), sigma = t / (1 - t): log p_t(y) = log p_sigma(y / (1 - t)) - D log(1 - t)."""
    g = torch.Generator().manual_seed(3)
    y = 2 * torch.randn(100, 2, generator=g, dtype=F64)
    for t in (0.1, 0.5, 0.9):
        expected = MIX.log_prob(y / (1 - t), sigma=t / (1 - t)) - 2 * math.log(1 - t)
        torch.testing.assert_close(marginal(MIX, t).log_prob(y), expected, rtol=1e-8, atol=1e-10)


def within_components(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The share of points nearest (by responsibility) each component [K], and the variance of their coordinates
    standardised by that component, (x - mu_k) / s_k, over both axes [K] (1 for exact draws; the modes are far
    apart, so the assignment is all but certain)."""
    k = MIX.responsibilities(points).argmax(1)
    share = torch.bincount(k, minlength=3).double() / len(points)
    z = (points - MEANS[k]) / STDS[k, None]
    return share, torch.stack([z[k == j].pow(2).mean() for j in range(3)])


def test_exact_noise_pushed_through_the_consistency_function_lands_on_the_mixture():
    n, g = 1500, torch.Generator().manual_seed(4)
    pushed = consistency_function(MIX, torch.randn(n, 2, generator=g, dtype=F64), 1.0, tol=1e-6)
    reference = MIX.sample(n, g)[0]

    def sw2(a: torch.Tensor) -> float:
        return sliced_wasserstein(a, reference, generator=torch.Generator().manual_seed(99))

    band = sorted(sw2(MIX.sample(n, g)[0]) for _ in range(5))  # exact draws of the same size against the same
    assert sw2(pushed) <= 1.5 * band[2]
    # sharper than SW2 (whose band is wide where mass moves between far modes): each component's share within
    # four binomial standard errors, and its points spread as N(mu_k, s_k^2 I)
    share, spread = within_components(pushed)
    assert bool(((share - WEIGHTS).abs() < 4 * (WEIGHTS * (1 - WEIGHTS) / n).sqrt()).all())
    assert bool(((spread - 1).abs() < 0.15).all())
    # a plausible wrong answer fails it: the exact map to t = 0.3, then the denoiser's posterior mean (shrunk modes)
    x = exact_flow_map(MIX, torch.randn(n, 2, generator=g, dtype=F64), 1.0, 0.3, tol=1e-6)
    shrunk = x - 0.3 * mixture_velocity(MEANS, STDS, WEIGHTS, x, torch.full((n,), 0.3, dtype=F64))
    assert bool((within_components(shrunk)[1] < 0.7).all())  # s^2 / (s^2 + sigma^2) at sigma = 3/7: 0.18 to 0.58


def test_meanflow_average_velocity_its_limit_and_its_defining_identity():
    g = torch.Generator().manual_seed(5)
    t = 0.7
    z = marginal(MIX, t).sample(60, g)[0]
    tt = torch.full((60,), t, dtype=F64)
    v = mixture_velocity(MEANS, STDS, WEIGHTS, z, tt)
    torch.testing.assert_close(average_velocity(MIX, z, t, t), v, rtol=0, atol=0)  # u(z, t, t) = v(z, t)
    # z_r = z - (t - r) u(z, r, t)
    u = average_velocity(MIX, z, 0.2, t, tol=1e-10)
    torch.testing.assert_close(z - 0.5 * u, exact_flow_map(MIX, z, t, 0.2, tol=1e-10), rtol=0, atol=1e-9)
    # u -> v as r -> t, at first order: halving t - r halves the gap
    gaps = [float((average_velocity(MIX, z, t - d, t, tol=1e-11) - v).norm(dim=1).max()) for d in (1e-2, 5e-3, 1e-6)]
    assert 1.8 < gaps[0] / gaps[1] < 2.2 and gaps[2] < 1e-4
    # MeanFlow's identity u = v - (t - r) du/dt, du/dt = v . grad_z u + d_t u: the derivative along the tangent
    # (v, 1) of (z, t), by central differences
    r, d = 0.2, 2.5e-4
    ahead = average_velocity(MIX, z + d * v, r, t + d, tol=1e-11)
    behind = average_velocity(MIX, z - d * v, r, t - d, tol=1e-11)
    du_dt = (ahead - behind) / (2 * d)
    torch.testing.assert_close(u, v - (t - r) * du_dt, rtol=0, atol=1e-5)
    assert float((u - v).norm(dim=1).max()) > 0.1  # the identity is not trivially u = v here


def test_error_field_of_a_one_step_map_against_the_exact_one():
    def denoiser_step(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One Euler step to t = 0: x - t v, the posterior mean E[x_0 | x_t]."""
        return x - t[:, None] * mixture_velocity(MEANS, STDS, WEIGHTS, x, t)

    box = (-3.0, 3.0, -2.0, 2.5)
    field = error_field(MIX, denoiser_step, 0.6, box, resolution=12)
    assert field.error.shape == field.density.shape == (12, 12) and field.points.shape == (144, 2)
    assert float(field.xs[0]) == -3.0 and float(field.ys[-1]) == 2.5
    torch.testing.assert_close(field.points[12 * 5 + 7], torch.stack([field.xs[7], field.ys[5]]))  # row by row
    exact = consistency_function(MIX, field.points, 0.6, tol=1e-9)
    t = torch.full((144,), 0.6, dtype=F64)
    expected = (denoiser_step(field.points, t) - exact).norm(dim=1).reshape(12, 12)
    torch.testing.assert_close(field.error, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(field.density, marginal(MIX, 0.6).log_prob(field.points).exp().reshape(12, 12))
    assert field.mean == pytest.approx(float(expected.mean()), abs=1e-6)
    w = field.density / field.density.sum()
    assert field.weighted_mean == pytest.approx(float((w * expected).sum()), abs=1e-6)
    # the exact map's own field is zero, and the denoiser's error shrinks as t -> 0 (x_0 | x_t sharpens)
    calls: list[tuple[int, int]] = []
    perfect = error_field(
        MIX,
        lambda x, tt: consistency_function(MIX, x, tt, tol=1e-10),
        0.6,
        box,
        resolution=6,
        on_step=lambda *a: calls.append(a),
    )
    assert perfect.mean < 1e-6
    done = [c[0] for c in calls]  # progress in thousandths of the way, rising to the end
    assert done == sorted(set(done)) and done[-1] == 1000 and {c[1] for c in calls} == {1000} and len(done) > 5
    assert error_field(MIX, denoiser_step, 0.05, box, resolution=12).weighted_mean < 0.2 * field.weighted_mean


def test_bad_inputs_are_refused_with_a_sentence():
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(BadInputError, match="isotropic"):
        exact_flow_map(GaussianMixture(MEANS, torch.tensor([[0.3, 0.4]] * 3, dtype=F64)), x, 1.0, 0.0)
    with pytest.raises(BadInputError, match=r"\[0, 1\]"):
        exact_flow_map(MIX, x, 1.2, 0.0)
    with pytest.raises(BadInputError, match="shape"):
        exact_flow_map(MIX, torch.zeros(4, 3, dtype=F64), 1.0, 0.0)
    with pytest.raises(BadInputError, match="one per point"):
        exact_flow_map(MIX, x, torch.tensor([0.5, 0.6]), 0.0)
    with pytest.raises(BadInputError, match="plane"):
        error_field(GaussianMixture(torch.zeros(1, 3), 1.0), lambda a, b: a, 0.5, (-1, 1, -1, 1))
