"""Deterministic inversion (core/diffusion/inversion.py): the round trip data -> noise -> data against the exact
mixture denoiser converges to the data at (at least) each sampler's order; a learned model's error falls with
the steps; stochastic samplers are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.diffusion.denoisers import with_labels
from core.diffusion.grids import karras_sigmas
from core.diffusion.inversion import INVERTIBLE, invert, regenerate, round_trip
from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError

STEPS = (10, 20, 40, 80)


@pytest.fixture(scope="module")
def mixture_and_data():
    stds = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]]), stds)
    g = torch.Generator().manual_seed(0)
    comp = torch.randint(3, (200,), generator=g)
    return mix, mix.means[comp] + torch.randn(200, 2, generator=g, dtype=torch.float64) * stds[comp, None]


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("ddim", 1), ("heun", 2), ("dpm_2", 2), ("dpmpp_2m", 2)])
def test_the_round_trip_converges_to_the_data_at_the_samplers_order(mixture_and_data, name, order):
    mix, x0 = mixture_and_data
    errors = [float(round_trip(name, mix.denoise, x0, karras_sigmas(n, 0.02, 20.0)).ode_error.mean()) for n in STEPS]
    measured = -np.polyfit(np.log(STEPS), np.log(errors), 1)[0]
    assert measured > order - 0.3, (measured, errors)  # second-order ones gain one more: the round trip is symmetric
    assert errors[-1] < (0.05 if order == 1 else 1e-3)


def test_ddim_inverts_exactly_as_euler_and_the_noise_is_gaussian_at_high_sigma(mixture_and_data):
    mix, x0 = mixture_and_data
    sigmas = karras_sigmas(40, 0.02, 80.0)
    noise = invert("ddim", mix.denoise, x0, sigmas)
    assert torch.equal(noise, invert("euler", mix.denoise, x0, sigmas))
    eps = noise / 80.0  # x = x0 + sigma * eps with |x0| << sigma: the inverted noise reads as N(0, I)
    assert abs(float(eps.mean())) < 0.15 and abs(float(eps.std()) - 1) < 0.15


def test_regenerating_from_fresh_noise_is_sampling(mixture_and_data):
    mix, _ = mixture_and_data
    from core.diffusion.samplers import sample

    sigmas = karras_sigmas(12, 0.02, 20.0)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 20.0
    torch.testing.assert_close(
        regenerate("dpmpp_2m", mix.denoise, x, sigmas)[1], sample("dpmpp_2m", mix.denoise, x, sigmas)
    )


def test_stochastic_samplers_and_bad_grids_are_refused(mixture_and_data):
    mix, x0 = mixture_and_data
    assert "euler_ancestral" not in INVERTIBLE
    with pytest.raises(BadInputError, match="no inverse"):
        invert("euler_ancestral", mix.denoise, x0, karras_sigmas(10, 0.02, 20.0))
    with pytest.raises(BadInputError, match="strictly decreasing"):
        invert("euler", mix.denoise, x0, karras_sigmas(10, 0.02, 20.0).flip(0))


def test_a_learned_models_round_trip_error_falls_with_the_steps():
    """The bundled class-conditional latent model (an MLP on the VAE's 2-D plane)."""
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    model = load_model(load_registry().model("mnist-latent-cond"))
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(64) % 10
    denoiser = with_labels(model.denoiser, labels)
    x0 = torch.randn(64, 2, generator=g) * 0.8
    sigmas = {n: model.schedule.sampling_sigmas(n, "trailing", max_sigma=model.schedule.sampling_cap) for n in (10, 50)}
    coarse, fine = (float(round_trip("dpmpp_2m", denoiser, x0, sigmas[n]).ode_error.mean()) for n in (10, 50))
    assert fine < coarse / 3, (coarse, fine)
