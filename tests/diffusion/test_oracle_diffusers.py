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
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LCMScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)

from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.samplers import SAMPLERS
from core.diffusion.schedules import NoiseSchedule
from tests.helpers import NearlyGaussianEps, tiny_unet

BATCH, STEPS, TOL = 2, 12, 1e-4
COMMON = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}


def _unipc(order: int, variant: str, corrector: bool) -> tuple:
    config = {
        "solver_order": order,
        "solver_type": variant,
        "timestep_spacing": "trailing",
        "disable_corrector": [] if corrector else list(range(STEPS)),
    }
    options = {"order": order, "variant": variant, "corrector": "on" if corrector else "off"}
    return UniPCMultistepScheduler, config, "unipc", options, True


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
    # LCM's boundary scalings c_skip, c_out are 2.5e-7 and 1 - 1.3e-7 at its smallest timestep here (99): its
    # step is the multistep consistency sampler's on the network's own x_0
    "consistency": (LCMScheduler, {}, "consistency", {}, True),
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
    "dpmpp_3m": (  # the published third-order multistep (see dpmpp_3m's docstring on its order)
        DPMSolverMultistepScheduler,
        {
            "algorithm_type": "dpmsolver++",
            "solver_order": 3,
            "solver_type": "heun",  # its second-order warm-up step as k-diffusion's (phi_2), not the midpoint
            "timestep_spacing": "trailing",
            "lower_order_final": False,
        },
        "dpmpp_3m",
        {},
        True,
    ),
    **{
        f"unipc_order{order}{'' if corrector else '_unip'}": _unipc(order, "bh2", corrector)
        for order in (1, 2, 3)
        for corrector in (True, False)
    },
}


# diffusers ends these runs elsewhere than at sigma = 0, where our grids end: DEIS at the training schedule's
# smallest sigma (its final_sigmas_type is not offered), and UniPC with B(h) = h returns NaN there (its last step
# multiplies B(h) = -inf by a zero sum). Every state up to the last step is compared instead.
LAST_STEP_CASES = {
    **{
        f"unipc_bh1_order{order}{'' if corrector else '_unip'}": _unipc(order, "bh1", corrector)
        for order in (1, 2, 3)
        for corrector in (True, False)
    },
    **{
        f"deis_order{order}_{spacing}": (
            DEISMultistepScheduler,
            {"solver_order": order, "timestep_spacing": spacing},
            "deis",
            {"order": order},
            True,
        )
        for order in (1, 2, 3)
        for spacing in ("trailing", "leading")
    },
}


@pytest.fixture(scope="module")
def unet():
    return NearlyGaussianEps(tiny_unet(seed=1234), DDPMScheduler(**COMMON).alphas_cumprod).eval()


def _diffusers_loop(scheduler, unet, x, generator, eta, states=None):
    for t in scheduler.timesteps:
        if states is not None:
            states.append(x)
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


@pytest.mark.parametrize("case", list(LAST_STEP_CASES))
def test_matches_diffusers_up_to_its_last_step(case, unet):
    cls, extra, name, options, _ = LAST_STEP_CASES[case]
    scheduler = cls(**COMMON, **extra)
    scheduler.set_timesteps(STEPS)
    schedule = NoiseSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
    sigmas = schedule.sigmas_for_timesteps(scheduler.timesteps)
    noise = torch.randn(BATCH, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    theirs: list[torch.Tensor] = []
    _diffusers_loop(scheduler, unet, noise, None, None, theirs)
    ours: list[torch.Tensor] = []
    x = noise * (1 + sigmas[0] ** 2).sqrt().float()
    SAMPLERS[name].fn(
        DiscreteTimeDenoiser(unet, schedule, "epsilon"), x, sigmas, callback=lambda s: ours.append(s.x), **options
    )
    assert len(ours) == len(theirs) == STEPS
    for i, (mine, vp) in enumerate(zip(ours, theirs, strict=True)):  # ours in their VP coordinates (data scale)
        torch.testing.assert_close(mine / (1 + sigmas[i] ** 2).sqrt().float(), vp, atol=TOL, rtol=0, msg=f"step {i}")
    assert 0.1 < ours[-1].abs().max() < 10
