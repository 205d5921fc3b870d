"""The Brownian noise source, the exact-likelihood ODE, and the mixture denoiser's two code paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from core.diffusion.brownian import BrownianNoise
from core.diffusion.likelihood import ODESettings, bits_per_dim, log_density
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


def test_the_ode_log_density_with_the_exact_denoiser_matches_the_closed_form_to_1e_3_nats():
    mix = _mixture()
    x, _ = mix.sample(400, torch.Generator().manual_seed(0))
    x = torch.cat([x, torch.tensor([[0.0, 0.0], [1.5, -2.0]], dtype=torch.float64)])  # between the modes
    mean = (mix.weights[:, None] * mix.means).sum(0)
    var = float((mix.weights[:, None] * (mix.stds**2 + (mix.means - mean) ** 2)).sum(0).mean())
    settings = ODESettings(sigma_min=0.002, sigma_max=500.0, steps=128, prior_mean=tuple(mean.tolist()), prior_var=var)
    ode = log_density(mix.denoise, x, settings)
    exact = mix.log_prob(x, 0.002)
    assert float((ode - exact).abs().max()) < 1e-3
    coarse = log_density(mix.denoise, x, ODESettings(steps=8, prior_mean=tuple(mean.tolist()), prior_var=var))
    assert float((coarse - exact).abs().max()) > 1e-3  # the check can fail: too few steps are visibly off
    # Far in a tail (log p = -100) the path is stiff where sigma is small: it needs a finer grid.
    far = torch.tensor([[8.0, -8.0]], dtype=torch.float64)
    fine = log_density(mix.denoise, far, ODESettings(steps=512, prior_mean=tuple(mean.tolist()), prior_var=var))
    assert float((fine - mix.log_prob(far, 0.002)).abs().max()) < 1e-3


def test_bits_per_dimension_are_nats_over_dimensions_and_ln_2():
    assert bits_per_dim(2 * math.log(2), 2) == pytest.approx(1.0)


def test_the_likelihood_refuses_high_dimensional_points_and_bad_settings():
    with pytest.raises(BadInputError):
        log_density(_mixture(), torch.zeros(2, 9, dtype=torch.float64))
    with pytest.raises(BadInputError):
        ODESettings(sigma_min=1.0, sigma_max=0.5)


def test_lms_keeps_converging_on_fine_grids():
    # Integrated in sigma itself, the coefficients cancelled to round-off on fine grids: 4,000 and 8,000 steps
    # then differed by 1e-5 at the median point, more than 1,000 and 2,000 did.
    mix = _mixture()
    x_T = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 80
    runs = [sample("lms", mix.denoise, x_T.clone(), karras_sigmas(n, 0.002, 80.0)) for n in (2000, 4000, 8000)]
    coarse, fine = ((runs[0] - runs[2]).norm(dim=1), (runs[1] - runs[2]).norm(dim=1))
    assert float(fine.median()) < 1e-7 and float(fine.median()) < float(coarse.median())
