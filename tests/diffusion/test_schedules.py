from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDPMScheduler

from core.diffusion.grids import karras_sigmas
from core.diffusion.schedules import SCHEDULE_KINDS, NoiseSchedule, cosine_alpha_bar, make_schedule
from core.errors import BadInputError


@pytest.mark.parametrize("name", list(SCHEDULE_KINDS))
@pytest.mark.parametrize("T", [10, 1000])
def test_every_schedule_is_a_valid_diffusion(name, T):
    sched = make_schedule(name, T)
    assert sched.betas.dtype == torch.float64 and sched.betas.shape == (T,)
    assert bool(((sched.betas > 0) & (sched.betas < 1)).all())
    assert bool((torch.diff(sched.snr) < 0).all()), "SNR must strictly decrease"
    assert bool((torch.diff(sched.sigmas) > 0).all())
    torch.testing.assert_close(sched.sigmas, (1 / sched.snr).sqrt())
    torch.testing.assert_close(sched.log_snr, sched.snr.log())
    torch.testing.assert_close(sched.alphas_cumprod, torch.cumprod(1 - sched.betas, 0))


def test_cosine_matches_its_formula_until_the_clip():
    T = 1000
    sched = make_schedule("cosine", T)
    u = torch.arange(1, T + 1, dtype=torch.float64) / T
    formula = cosine_alpha_bar(u) / cosine_alpha_bar(torch.zeros(1, dtype=torch.float64))
    unclipped = sched.betas < 0.999
    assert unclipped.sum() > 990  # the 0.999 clip only bites at the very end
    first_clip = int((~unclipped).nonzero()[0]) if (~unclipped).any() else T
    torch.testing.assert_close(sched.alphas_cumprod[:first_clip], formula[:first_clip], rtol=1e-10, atol=1e-14)
    assert float(sched.betas.max()) == pytest.approx(0.999)


def test_linear_quadratic_and_scaled_linear_formulas():
    lin = make_schedule("linear", 5, 0.1, 0.5).betas
    torch.testing.assert_close(lin, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=torch.float64))
    quad = make_schedule("quadratic", 3, 0.1, 0.5).betas
    torch.testing.assert_close(quad, torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64))
    sl = make_schedule("scaled_linear", 3, 0.01, 0.09).betas
    torch.testing.assert_close(sl, torch.tensor([0.01, 0.04, 0.09], dtype=torch.float64))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("linear", "linear"), ("scaled_linear", "scaled_linear"), ("cosine", "squaredcos_cap_v2"), ("sigmoid", "sigmoid")],
)
def test_alpha_bar_agrees_with_diffusers(ours, theirs):
    kind = SCHEDULE_KINDS[ours]
    kwargs = {} if kind.beta_start is None else {"beta_start": kind.beta_start, "beta_end": kind.beta_end}
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs, **kwargs).alphas_cumprod
    # diffusers multiplies in float32; we keep float64, so agreement is to float32's accumulated rounding
    torch.testing.assert_close(make_schedule(ours, 1000).alphas_cumprod.float(), ref, rtol=2e-4, atol=1e-7)


def test_sigma_t_round_trip_and_interpolation_in_log_sigma():
    sched = make_schedule("linear", 1000)
    t = torch.arange(1000, dtype=torch.float64)
    torch.testing.assert_close(sched.sigma_to_t(sched.sigmas), t, atol=1e-9, rtol=0)
    torch.testing.assert_close(sched.t_to_sigma(t), sched.sigmas)
    half = sched.t_to_sigma(torch.tensor(10.5, dtype=torch.float64))
    assert float(half) == pytest.approx(math.sqrt(float(sched.sigmas[10] * sched.sigmas[11])))
    torch.testing.assert_close(sched.sigma_to_t(half), torch.tensor(10.5, dtype=torch.float64))
    # out of range noise levels clamp to the ends
    assert float(sched.sigma_to_t(torch.tensor(1e-9))) == 0.0
    assert float(sched.sigma_to_t(torch.tensor(1e9))) == 999.0


def test_from_alphas_cumprod_round_trips():
    sched = make_schedule("cosine", 200)
    back = NoiseSchedule.from_alphas_cumprod(sched.alphas_cumprod)
    torch.testing.assert_close(back.betas, sched.betas)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace", "karras"])
@pytest.mark.parametrize("n", [1, 2, 10, 50])
def test_sampling_grids_decrease_and_end_at_zero(spacing, n):
    sched = make_schedule("linear", 1000)
    sigmas = sched.sampling_sigmas(n, spacing)
    assert sigmas.shape == (n + 1,)
    assert float(sigmas[-1]) == 0.0
    assert bool((torch.diff(sigmas) < 0).all())
    assert float(sigmas[0]) <= sched.sigma_max + 1e-9


def test_trailing_starts_at_the_last_timestep_and_leading_does_not():
    sched = make_schedule("linear", 1000)
    assert float(sched.timesteps(10, "trailing")[0]) == 999
    assert float(sched.timesteps(10, "leading")[0]) == 900
    assert float(sched.sampling_sigmas(10, "trailing")[0]) == pytest.approx(sched.sigma_max)


def test_karras_grid_formula():
    sigmas = karras_sigmas(3, 0.1, 10.0, rho=7.0)
    mid = ((10.0 ** (1 / 7) + 0.1 ** (1 / 7)) / 2) ** 7
    torch.testing.assert_close(sigmas, torch.tensor([10.0, mid, 0.1, 0.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_schedule("wiggly"),
        lambda: make_schedule("linear", 1),
        lambda: make_schedule("linear", 100, 0.5, 0.1),
        lambda: make_schedule("linear", 100).sampling_sigmas(0),
        lambda: make_schedule("linear", 100).sampling_sigmas(101),
        lambda: make_schedule("linear", 100).sampling_sigmas(10, "sideways"),
        lambda: NoiseSchedule(torch.tensor([0.1, 1.5])),
    ],
)
def test_bad_settings_raise_a_sentence(call):
    with pytest.raises(BadInputError) as info:
        call()
    assert str(info.value)[0].isupper() and str(info.value).endswith((".", ")"))


def test_max_sigma_caps_where_sampling_starts():
    from core.diffusion.schedules import DEFAULT_MAX_SIGMA

    cosine, linear = make_schedule("cosine"), make_schedule("linear")
    assert cosine.sigma_max > 1e4  # the 0.999 clip leaves alpha_bar ~ 2e-9 at t = T - 1
    for spacing in ("leading", "trailing", "linspace", "karras"):
        capped = cosine.sampling_sigmas(20, spacing, max_sigma=DEFAULT_MAX_SIGMA)
        assert float(capped[0]) <= DEFAULT_MAX_SIGMA and float(capped[-1]) == 0 and len(capped) == 21
        # DDPM's linear schedule ends below the cap, so the cap changes nothing there
        torch.testing.assert_close(
            linear.sampling_sigmas(20, spacing, max_sigma=DEFAULT_MAX_SIGMA), linear.sampling_sigmas(20, spacing)
        )
    assert cosine.usable_steps(DEFAULT_MAX_SIGMA) == 996
    assert float(cosine.timesteps(10, "trailing", max_sigma=DEFAULT_MAX_SIGMA)[0]) == 995


def test_the_sampling_cap_applies_to_schedules_that_end_above_it_and_capped_grids_fit_under_it():
    from core.diffusion.schedules import DEFAULT_MAX_SIGMA

    cosine, linear = make_schedule("cosine"), make_schedule("linear")
    assert cosine.sampling_cap == DEFAULT_MAX_SIGMA and linear.sampling_cap is None  # linear ends at sigma ~ 157
    # More steps than lie under the cap: the grid has as many as fit, and starts under the cap.
    grid = cosine.capped_sigmas(1000)
    assert len(grid) == cosine.usable_steps(DEFAULT_MAX_SIGMA) + 1 == 997 and float(grid[0]) <= DEFAULT_MAX_SIGMA
    karras = cosine.capped_sigmas(20, "karras")
    assert float(karras[0]) == DEFAULT_MAX_SIGMA and float(karras[-2]) == cosine.sigma_min
    torch.testing.assert_close(linear.capped_sigmas(20), linear.sampling_sigmas(20, "trailing"))
