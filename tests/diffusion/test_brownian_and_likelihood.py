"""The Brownian noise source, the exact-likelihood ODE (RK4 on a grid, and adaptive with error estimates), and the
mixture denoiser's two code paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from core.diffusion import likelihood
from core.diffusion.brownian import BrownianNoise
from core.diffusion.likelihood import ErrorControl, ODESettings, adaptive_log_density, bits_per_dim, log_density
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import lms_coefficients, sample
from core.diffusion.schedules import karras_sigmas
from core.errors import BadInputError


def _mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([[-3.0, 0.0], [3.0, 2.0], [0.0, -4.0]]),
        torch.tensor([[0.5, 0.3], [0.8, 0.8], [0.4, 1.0]]),
        torch.tensor([0.5, 0.3, 0.2]),
    )


def test_each_step_of_a_brownian_path_is_standard_normal_and_coarse_steps_sum_the_fine_ones():
    noise = BrownianNoise((20_000, 1), torch.Generator().manual_seed(0))
    x = torch.zeros(20_000, 1, dtype=torch.float64)
    fine = karras_sigmas(40, 0.01, 10.0).tolist()
    zs = [noise(x, a, b) for a, b in itertools.pairwise(fine)]
    for z in zs[::7]:
        assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1) < 0.03
    assert abs(float(torch.corrcoef(torch.cat([zs[3], zs[4]], 1).T)[0, 1])) < 0.03  # disjoint steps: independent
    # A coarse step over fine[2] -> fine[9] is the sum of the fine increments: the same path, seen coarser.
    coarse = noise(x, fine[2], fine[9]) * math.sqrt(fine[2] - fine[9])
    summed = sum(z * math.sqrt(a - b) for z, a, b in zip(zs[2:9], fine[2:9], fine[3:10], strict=True))
    torch.testing.assert_close(coarse, summed)
    # Asked again, in any order, the path gives the same values.
    torch.testing.assert_close(noise(x, fine[5], fine[6]), zs[5])


def test_a_brownian_path_refuses_a_batch_of_another_shape_and_a_zero_step():
    noise = BrownianNoise((3, 2), torch.Generator())
    with pytest.raises(BadInputError):
        noise(torch.zeros(4, 2), 1.0, 0.5)
    with pytest.raises(BadInputError):
        noise(torch.zeros(3, 2), 1.0, 1.0)


def test_on_one_brownian_path_a_stochastic_sampler_converges_to_its_fine_run_and_on_fresh_noise_it_does_not():
    mix = _mixture()
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 80

    def run(steps: int, generator) -> torch.Tensor:
        return sample(
            "euler_ancestral", mix.denoise, x_T.clone(), karras_sigmas(steps, 0.002, 80.0), generator=generator
        )

    noise = BrownianNoise(x_T.shape, torch.Generator().manual_seed(2))
    reference = run(1000, noise)
    strong = [float(((run(n, noise) - reference) ** 2).sum(1).mean().sqrt()) for n in (10, 40, 160)]
    assert strong[0] > strong[1] > strong[2] and strong[2] < 0.5 * strong[0]
    fresh = float(((run(160, torch.Generator().manual_seed(3)) - reference) ** 2).sum(1).mean().sqrt())
    assert fresh > 3 * strong[2]  # independent noise: the distance measures the noise, not the sampler


def test_lms_coefficients_match_exact_polynomial_integration_in_sigma():
    sigmas = karras_sigmas(30, 0.002, 80.0).tolist()
    for i in (3, 12, 25):
        for order in (1, 2, 3, 4):
            nodes = [sigmas[i - j] for j in range(order)]
            expected = []
            for j in range(order):
                others = [n for k, n in enumerate(nodes) if k != j]
                basis = np.polynomial.Polynomial.fromroots(others) if others else np.polynomial.Polynomial([1.0])
                basis = basis / np.prod([nodes[j] - n for n in others])
                anti = basis.integ()
                expected.append(anti(sigmas[i + 1]) - anti(sigmas[i]))
            assert lms_coefficients(sigmas, i, order) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_mixture_denoiser_gives_the_same_answer_for_one_sigma_and_for_one_sigma_per_sample():
    mix = _mixture()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    sigmas = torch.rand(50, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    per_sample = mix.denoise(x, sigmas)
    one_by_one = torch.cat([mix.denoise(x[i : i + 1], sigmas[i : i + 1]) for i in range(50)])
    torch.testing.assert_close(per_sample, one_by_one)
    # Against the formula written out per component.
    var = mix.stds[None] ** 2 + sigmas[:, None, None] ** 2
    log_n = -0.5 * (((x[:, None] - mix.means[None]) ** 2 / var) + torch.log(2 * math.pi * var)).sum(-1)
    resp = torch.softmax(log_n + mix.weights.log(), dim=1)
    x0 = (resp[..., None] * (mix.means + mix.stds**2 / var * (x[:, None] - mix.means))).sum(1)
    torch.testing.assert_close(per_sample, x0)


def _settings(mix: GaussianMixture, sigma_max: float = 500.0, steps: int = 128) -> ODESettings:
    """The ODE's range and prior for a mixture: its mean and average per-axis variance."""
    mean = (mix.weights[:, None] * mix.means).sum(0)
    var = float((mix.weights[:, None] * (mix.stds**2 + (mix.means - mean) ** 2)).sum(0).mean())
    return ODESettings(sigma_max=sigma_max, steps=steps, prior_mean=tuple(mean.tolist()), prior_var=var)


# Far in the tails of _mixture(), between its modes, where 128 RK4 steps are 0.22 and 3.3 nats off.
TAIL_64 = (-4.44, -5.09)  # log p = -64.7
TAIL_330 = (12.23, -16.28)  # log p = -330.3


def test_the_rk4_ode_log_density_with_the_exact_denoiser_matches_the_closed_form_on_typical_points():
    mix = _mixture()
    x, _ = mix.sample(400, torch.Generator().manual_seed(0))
    x = torch.cat([x, torch.tensor([[0.0, 0.0], [1.5, -2.0]], dtype=torch.float64)])  # between the modes
    exact = mix.log_prob(x, 0.002)
    assert float((log_density(mix.denoise, x, _settings(mix)) - exact).abs().max()) < 1e-3
    coarse = log_density(mix.denoise, x, _settings(mix, steps=8))
    assert float((coarse - exact).abs().max()) > 1e-3  # the check can fail: too few steps are visibly off


def test_the_adaptive_ode_is_within_1e_3_nats_of_the_closed_form_far_in_the_tails_where_rk4_is_not():
    mix = _mixture()
    far = torch.tensor([TAIL_64, TAIL_330], dtype=torch.float64)
    exact = mix.log_prob(far, 0.002)
    assert exact.tolist() == pytest.approx([-64.7, -330.3], abs=0.1)
    rk4 = log_density(mix.denoise, far, _settings(mix, sigma_max=1e4))
    assert float((rk4 - exact).abs().min()) > 0.1  # 128 uniform steps miss where the nearest mode changes
    found = adaptive_log_density(mix.denoise, far, _settings(mix, sigma_max=1e4))
    real = (found.value - exact).abs()
    assert float(real.max()) < 1e-3 and not found.capped.any()
    assert bool((real <= found.error).all()) and float(found.error.max()) <= ErrorControl().nats


def test_the_adaptive_ode_error_estimate_bounds_the_real_error_and_follows_the_tolerance():
    mix = _mixture()
    x, _ = mix.sample(300, torch.Generator().manual_seed(1))
    x = torch.cat([x, torch.tensor([TAIL_64, [0.0, 0.0], [1.5, -2.0], [8.0, -8.0]], dtype=torch.float64)])
    exact = mix.log_prob(x, 0.002)
    settings = _settings(mix, sigma_max=1e4)  # the prior exact to 1e-7 nats there: what is left is the ODE's
    runs = {nats: adaptive_log_density(mix.denoise, x, settings, ErrorControl(nats=nats)) for nats in (3e-3, 2e-4)}
    for nats, found in runs.items():
        real = (found.value - exact).abs()
        assert not found.capped.any() and float(found.error.max()) <= nats
        assert bool((real <= found.error).all())  # the estimate bounds the real error at every point
    loose, tight = runs[3e-3], runs[2e-4]
    assert float((tight.value - exact).abs().max()) < float((loose.value - exact).abs().max())
    assert float(tight.evals.double().mean()) > float(loose.evals.double().mean())  # its cost: more calls


def test_points_that_run_out_of_calls_are_capped_finite_and_carry_a_large_estimated_error():
    mix = _mixture()
    x = torch.tensor([TAIL_330, [0.0, 0.0], [-3.0, 0.1]], dtype=torch.float64)
    exact = mix.log_prob(x, 0.002)
    found = adaptive_log_density(mix.denoise, x, _settings(mix, sigma_max=1e4), ErrorControl(max_evals=400))
    assert found.capped.tolist() == [True, False, False] and int(found.evals.max()) <= 400
    assert bool(found.value.isfinite().all())  # the finishing steps are stable where the path is stiff
    real = (found.value - exact).abs()
    assert float(found.error[0]) > 1e-3 and float(real[0]) <= float(found.error[0])  # marked, and rightly
    assert float(real[1:].max()) < 1e-3


def test_the_adaptive_ode_reports_its_progress_in_thousandths_of_the_way():
    mix = _mixture()
    seen: list[tuple[int, int]] = []
    adaptive_log_density(mix.denoise, mix.sample(20)[0], _settings(mix), on_step=lambda k, n: seen.append((k, n)))
    done = [k for k, _ in seen]
    assert {n for _, n in seen} == {likelihood.PROGRESS} and done == sorted(done) and done[-1] == likelihood.PROGRESS


def test_the_dormand_prince_weights_meet_the_order_conditions_of_their_orders():
    a = np.zeros((7, 7))
    for i, row in enumerate(likelihood._A):
        a[i, : len(row)] = row
    c = np.array(likelihood._C)
    assert a.sum(1) == pytest.approx(c)
    b5 = a[6]  # the fifth-order weights are the last stage's (it is taken at the result)
    b4 = b5 - np.array(likelihood._E)
    conditions = [  # (weights . stage values, the exact integral) for the conditions of orders 1 to 4
        (lambda b: b.sum(), 1),
        (lambda b: b @ c, 1 / 2),
        (lambda b: b @ c**2, 1 / 3),
        (lambda b: b @ a @ c, 1 / 6),
        (lambda b: b @ c**3, 1 / 4),
        (lambda b: b @ (c * (a @ c)), 1 / 8),
        (lambda b: b @ a @ c**2, 1 / 12),
        (lambda b: b @ a @ a @ c, 1 / 24),
    ]
    fifth = [
        (lambda b: b @ c**4, 1 / 5),
        (lambda b: b @ a @ a @ a @ c, 1 / 120),
        (lambda b: b @ (c**2 * (a @ c)), 1 / 10),
    ]
    for check, value in conditions + fifth:
        assert check(b5) == pytest.approx(value, abs=1e-14)
    for check, value in conditions:
        assert check(b4) == pytest.approx(value, abs=1e-14)
    assert b4 @ c**4 != pytest.approx(1 / 5)  # the embedded solution is of fourth order only


def test_bits_per_dimension_are_nats_over_dimensions_and_ln_2():
    assert bits_per_dim(2 * math.log(2), 2) == pytest.approx(1.0)


def test_the_likelihood_refuses_high_dimensional_points_and_bad_settings():
    for ode in (log_density, adaptive_log_density):
        with pytest.raises(BadInputError):
            ode(_mixture().denoise, torch.zeros(2, 9, dtype=torch.float64))
    with pytest.raises(BadInputError):
        ODESettings(sigma_min=1.0, sigma_max=0.5)
    for bad in ({"nats": 0.0}, {"max_evals": 10}, {"max_step": 3.0}, {"first_step": 1.0, "max_step": 0.5}):
        with pytest.raises(BadInputError):
            ErrorControl(**bad)


def test_lms_keeps_converging_on_fine_grids():
    # Integrated in sigma itself, the coefficients cancelled to round-off on fine grids: 4,000 and 8,000 steps
    # then differed by 1e-5 at the median point, more than 1,000 and 2,000 did.
    mix = _mixture()
    x_T = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 80
    runs = [sample("lms", mix.denoise, x_T.clone(), karras_sigmas(n, 0.002, 80.0)) for n in (2000, 4000, 8000)]
    coarse, fine = ((runs[0] - runs[2]).norm(dim=1), (runs[1] - runs[2]).norm(dim=1))
    assert float(fine.median()) < 1e-7 and float(fine.median()) < float(coarse.median())
