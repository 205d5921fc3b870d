"""Step grids: the hand-made ones lie where their names say, typed grids are read or refused with a reason, and
the fitted ones (Align Your Steps, GITS, the direct search) do what they claim, checked against closed forms and
brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from core.diffusion import fitted_grids as fitted
from core.diffusion.grids import custom_sigmas, format_grid, karras_sigmas, log_snr_sigmas, uniform_sigmas
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import sample
from core.diffusion.schedules import SPACINGS, make_schedule
from core.errors import BadInputError

LO, HI = 0.002, 80.0


def _gaussian_denoiser(var: float):
    return lambda x, sigma: x * (var / (var + sigma**2)).view(-1, *([1] * (x.ndim - 1)))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_hand_made_grids_end_exactly_and_are_even_in_their_own_coordinate(n):
    for make, coord in [
        (log_snr_sigmas, np.log),
        (uniform_sigmas, lambda s: s),
        (karras_sigmas, lambda s: s ** (1 / 7)),
    ]:
        grid = make(n, LO, HI)
        assert len(grid) == n + 1 and grid[-1] == 0 and grid[0] == HI
        if n > 1:
            assert grid[-2] == LO
            gaps = np.diff(coord(grid[:-1].numpy()))
            assert np.allclose(gaps, gaps[0], rtol=1e-9)
    with pytest.raises(BadInputError):
        log_snr_sigmas(0, LO, HI)


@pytest.mark.parametrize("name", ["linear", "cosine", "flow"])
def test_a_schedules_uniform_time_grid_is_even_in_its_own_time_and_every_spacing_runs(name):
    schedule = make_schedule(name, 1000)
    grid = schedule.sampling_sigmas(11, "uniform-time", max_sigma=schedule.sampling_cap)
    ts = schedule.sigma_to_t(grid[:-1]).numpy()
    assert np.allclose(np.diff(ts), np.diff(ts)[0], atol=1e-6) and ts[-1] == pytest.approx(0, abs=1e-9)
    for spacing in SPACINGS:
        sigmas = schedule.sampling_sigmas(6, spacing)
        assert len(sigmas) == 7 and (sigmas.diff() < 0).all() and sigmas[-1] == 0
    with pytest.raises(BadInputError, match="Unknown step spacing"):
        schedule.sampling_sigmas(6, "ays")


def test_a_typed_grid_is_read_with_its_zero_and_refused_with_the_reason():
    assert custom_sigmas("80, 10 2;0.3\n0.002").tolist() == [80, 10, 2, 0.3, 0.002, 0]
    assert custom_sigmas("5, 1, 0").tolist() == [5, 1, 0]
    grid = log_snr_sigmas(5, LO, HI)
    assert torch.allclose(custom_sigmas(format_grid(grid)), grid, rtol=1e-3)  # read back what it writes
    for text, reason in [
        ("", "Type"),
        ("80, 90", "decreasing"),
        ("80, 80, 1", "decreasing"),
        ("80, -1", "not negative"),
        ("80, nan", "finite"),
        ("80, 1e999", "finite"),
        ("eighty", "not a number"),
        (", ".join(["1"] * 2000), "at most"),
    ]:
        with pytest.raises(BadInputError, match=reason):
            custom_sigmas(text)
    with pytest.raises(BadInputError, match="above this model"):
        custom_sigmas("200, 1", sigma_max=157.0)


def _exact_klub(var: float, grid: torch.Tensor) -> float:
    """A grid's KLUB on N(0, var I) data, in closed form."""
    return fitted.klub(fitted.gaussian_costs(var, grid[:-1]), list(range(len(grid) - 1)))


def test_the_monte_carlo_klub_agrees_with_its_closed_form_on_gaussian_data():
    var = 0.5
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(20_000, 2, generator=g, dtype=torch.float64) * math.sqrt(var)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    levels = log_snr_sigmas(300, LO, HI)[:-1]
    estimate = fitted.ays_costs(_gaussian_denoiser(var), x0, eps, levels)
    exact = fitted.gaussian_costs(var, levels)
    for k, j in [(0, 299), (0, 30), (100, 180), (250, 299), (150, 151)]:
        assert estimate[k, j] == pytest.approx(exact[k, j], rel=0.03), (k, j)
    assert np.isinf(estimate[np.tril_indices(300)]).all()
    assert fitted.gaussian_costs(var, levels[::50], nodes=128) == pytest.approx(
        fitted.gaussian_costs(var, levels[::50]), rel=1e-12
    )  # the closed form's quadrature has converged


def test_the_klub_search_finds_the_continuous_optimum_of_one_free_point():
    from scipy.optimize import minimize_scalar  # an independent one-dimensional search

    var = 0.5

    def klub_through(u: float) -> float:
        return _exact_klub(var, torch.tensor([HI, math.exp(u), LO, 0.0], dtype=torch.float64))

    best = minimize_scalar(klub_through, bounds=(math.log(LO), math.log(HI)), method="bounded").x
    levels = log_snr_sigmas(fitted.AYS_LEVELS, LO, HI)[:-1]
    path = fitted.cheapest_path(fitted.gaussian_costs(var, levels), 3)
    spacing = math.log(HI / LO) / (fitted.AYS_LEVELS - 1)
    assert abs(math.log(float(levels[path[1]])) - best) <= spacing  # the lattice point nearest the optimum


def test_align_your_steps_on_gaussian_data_lands_at_the_exact_klub_optimum_and_beats_the_hand_made_grids():
    """On Gaussian data the KLUB is known exactly: the grid fitted to Monte Carlo samples of the data must come
    within 2% of the least exact KLUB on the same lattice, and below the hand-made grids."""
    var, n = 0.5, 6
    levels = log_snr_sigmas(fitted.AYS_LEVELS, LO, HI)[:-1]
    exact = fitted.gaussian_costs(var, levels)
    optimum = fitted.klub(exact, fitted.cheapest_path(exact, n))
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(var)
    ays = fitted.ays_grid(_gaussian_denoiser(var), x0, n, LO, HI, generator=torch.Generator().manual_seed(2))
    assert len(ays) == n + 1 and (ays.diff() < 0).all() and ays[0] == HI and ays[-2] == pytest.approx(LO)
    assert optimum <= _exact_klub(var, ays) <= 1.02 * optimum
    for hand_made in (log_snr_sigmas, karras_sigmas, uniform_sigmas):
        assert _exact_klub(var, ays) < _exact_klub(var, hand_made(n, LO, HI))


def test_the_cheapest_path_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    m = 9
    cost = np.triu(rng.random((m, m)), 1)
    cost[np.tril_indices(m)] = np.inf
    for points in (2, 3, 4, 5):
        path = fitted.cheapest_path(cost, points)
        assert path[0] == 0 and path[-1] == m - 1 and len(path) == points
        total = sum(cost[a, b] for a, b in itertools.pairwise(path))
        brute = min(
            sum(cost[a, b] for a, b in itertools.pairwise((0, *mid, m - 1)))
            for mid in itertools.combinations(range(1, m - 1), points - 2)
        )
        assert total == pytest.approx(brute)


def test_gits_costs_are_euler_steps_along_the_teacher_and_its_grid_keeps_the_ends():
    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([0.3, 0.5]), torch.tensor([0.4, 0.6]))
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * HI
    fine = log_snr_sigmas(30, LO, HI)
    sig, cost = fitted.gits_costs(mix.denoise, x_T, fine)
    assert torch.equal(sig, fine[:-1]) and np.isinf(cost[np.tril_indices(len(sig))]).all()
    assert (cost[0, 1:] >= 0).all() and cost[0, -1] > cost[-2, -1]  # one long jump strays further than one short
    grid = fitted.gits_grid(mix.denoise, x_T, 5, LO, HI, fine_steps=30)
    assert len(grid) == 6 and grid[0] == HI and grid[-2] == pytest.approx(LO) and (grid.diff() < 0).all()
    assert set(grid[:-1].tolist()) <= set(fine.tolist())  # chosen among the teacher's points


def test_the_direct_search_finds_a_known_minimum_and_never_makes_the_start_worse():
    target = [30.0, 1.0, 0.05]

    def error(grid: torch.Tensor) -> float:
        return sum(math.log(float(g) / t) ** 2 for g, t in zip(grid[1:-2], target, strict=True))

    start = log_snr_sigmas(5, LO, HI)
    found = fitted.optimise_grid(error, start, sweeps=6)
    assert error(found) < 2e-3 < error(start)  # each point within about 3% of its target
    assert found[0] == HI and found[-2] == LO and found[-1] == 0


def test_a_grid_searched_on_warm_up_points_lowers_the_error_on_other_points():
    """On the mixture, the grid searched for DPM-Solver++(2M) at 4 steps against the exact ODE end points of a
    warm-up batch must also lower the error of fresh start points (not fitted)."""
    from core.labs.ground_truth.accuracy import ode_endpoint

    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([0.3, 0.5]), torch.tensor([0.4, 0.6]))
    warm = torch.randn(128, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * HI
    fresh = torch.randn(512, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * HI
    targets = {id(warm): ode_endpoint(mix, warm), id(fresh): ode_endpoint(mix, fresh)}

    def rms(x_T: torch.Tensor, grid: torch.Tensor) -> float:
        out = sample("dpmpp_2m", mix.denoise, x_T.clone(), grid)
        return float((out - targets[id(x_T)]).pow(2).sum(1).mean().sqrt())

    start = karras_sigmas(4, LO, HI)
    found = fitted.optimise_grid(lambda g: rms(warm, g), start)
    assert rms(fresh, found) < 0.8 * rms(fresh, start)
