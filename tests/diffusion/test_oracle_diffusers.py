"""Oracle: our sampling loops against diffusers' schedulers, on the same small fixed UNet and timesteps.

diffusers works with the model's own VP input (DDPM/DDIM) or with VE samples and input scaling (the
"discrete" k-schedulers). We start both from the same noise, give our sampler the grid through the very
timesteps diffusers chose, and use the schedule diffusers holds, so any difference is the loop itself.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
)

from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.samplers import SAMPLERS
from core.diffusion.schedules import NoiseSchedule
from tests.helpers import NearlyGaussianEps, tiny_unet

BATCH, STEPS, TOL = 2, 12, 1e-4
COMMON = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}

CASES = {
    # case: (scheduler, its extra config, our sampler, our options, does diffusers work on VP samples?)
    "ddpm_small": (DDPMScheduler, {"variance_type": "fixed_small", "clip_sample": False}, "ddpm", {}, True),
    "ddpm_large": (
        DDPMScheduler,
        {"variance_type": "fixed_large", "clip_sample": False},
        "ddpm",
        {"variance": "large"},
        True,
    ),
    "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": True}, "ddim", {}, True),
    "ddim_eta1": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": True}, "ddim", {"eta": 1.0}, True),
    "euler": (EulerDiscreteScheduler, {"timestep_spacing": "leading"}, "euler", {}, False),
    "heun": (HeunDiscreteScheduler, {"timestep_spacing": "leading"}, "heun", {}, False),
    "lms": (LMSDiscreteScheduler, {"timestep_spacing": "leading"}, "lms", {}, False),
    "dpmpp_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "timestep_spacing": "trailing"},
        "dpmpp_2m",
        {},
        True,
    ),
}


@pytest.fixture(scope="module")
def unet():
    return NearlyGaussianEps(tiny_unet(seed=1234), DDPMScheduler(**COMMON).alphas_cumprod).eval()


def _diffusers_loop(scheduler, unet, x, generator, eta):
    for t in scheduler.timesteps:
        with torch.no_grad():
            out = unet(scheduler.scale_model_input(x, t), t)
        extra = {"generator": generator} if generator is not None else {}
        if eta:  # DDIM takes eta per step
            extra["eta"] = eta
        x = scheduler.step(out, t, x, **extra).prev_sample
    return x


@pytest.mark.parametrize("case", list(CASES))
def test_matches_diffusers(case, unet):
    cls, extra, name, options, vp_start = CASES[case]
    scheduler = cls(**COMMON, **extra)
    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps
    if cls is HeunDiscreteScheduler:  # diffusers lists each second-order timestep twice
        timesteps = timesteps[::2]
    assert len(timesteps) == STEPS
    schedule = NoiseSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
    sigmas = schedule.sigmas_for_timesteps(timesteps)

    noise = torch.randn(BATCH, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    # VP models start from x_T ~ N(0, I); in VE coordinates that is x_T / sqrt(ab_T) = x_T sqrt(1 + sigma^2)
    x_ours = noise * (1 + sigmas[0] ** 2).sqrt().float() if vp_start else noise * sigmas[0].float()
    x_theirs = noise if vp_start else x_ours.clone()

    stochastic = SAMPLERS[name].injects_noise(options)
    generator = torch.Generator().manual_seed(99) if stochastic else None
    theirs = _diffusers_loop(scheduler, unet, x_theirs, generator, options.get("eta"))
    denoiser = DiscreteTimeDenoiser(unet, schedule, "epsilon")
    ours = SAMPLERS[name].fn(denoiser, x_ours, sigmas, generator=torch.Generator().manual_seed(99), **options)

    assert torch.isfinite(ours).all()
    assert 0.1 < ours.abs().max() < 10  # a sample the size of data, neither collapsed nor blown up
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)


def test_leading_spacing_visits_the_same_timesteps_as_ddim():
    for spacing in ("leading", "trailing", "linspace"):
        for n in (1, 7, 10, 50, 999):
            theirs = DDIMScheduler(**COMMON, timestep_spacing=spacing)
            theirs.set_timesteps(n)
            ours = NoiseSchedule.from_alphas_cumprod(theirs.alphas_cumprod).timesteps(n, spacing)
            assert ours.long().tolist() == theirs.timesteps.tolist(), (spacing, n)
