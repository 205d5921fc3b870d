"""A folder's own scheduler config, followed (zoo/loaders.folder_scheduler, core/labs/samplers.folder_settings):
a tiny UNet saved with `save_pretrained`, its scheduler config written by diffusers' scheduler class itself, loaded
and sampled the Atlas's way with the settings the folder asks for, against diffusers' own loop (set_timesteps,
scale_model_input, step) from the same noise, to 1e-4. One case per field, for the scheduler classes it belongs to.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

from core.labs.samplers import SamplerSettings, folder_settings, run_sampler
from tests.helpers import tiny_unet
from zoo.__main__ import main as zoo_cli
from zoo.loaders import load_model
from zoo.local import local_entry

TOL = 1e-4
STEPS = 10  # a divisor of T - 1 = 999 less one and of T = 1000: see test_a_grid_diffusers_spaces_differently_is_named
SEED = 3
# v-prediction unless a case says otherwise: a random network's x_0 estimates then stay the size of data (an
# epsilon model's reach a few hundred, where float32's own rounding is 1e-5)
LINEAR = {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "prediction_type": "v_prediction"}
TRAINED = torch.linspace(2e-4, 0.03, 1000).tolist()

CASES = {
    # case: (scheduler class, its config, steps)
    "ddim_clip_sample_range": (DDIMScheduler, {"clip_sample": True, "clip_sample_range": 0.5}, STEPS),
    "ddpm_clip_sample_range": (DDPMScheduler, {"clip_sample": True, "clip_sample_range": 0.5}, STEPS),
    "ddim_thresholding": (
        DDIMScheduler,
        {"thresholding": True, "dynamic_thresholding_ratio": 0.8, "sample_max_value": 1.2},
        STEPS,
    ),
    "ddpm_thresholding": (
        DDPMScheduler,
        {"thresholding": True, "dynamic_thresholding_ratio": 0.8, "sample_max_value": 1.2},
        STEPS,
    ),
    "dpm_thresholding": (
        DPMSolverMultistepScheduler,
        {"thresholding": True, "dynamic_thresholding_ratio": 0.8, "sample_max_value": 1.2},
        STEPS,
    ),
    **{
        f"{name}_{spacing}": (cls, {"timestep_spacing": spacing, "steps_offset": 1, **extra}, STEPS)
        for name, cls, extra in (
            ("ddim", DDIMScheduler, {"clip_sample": False}),
            ("ddpm", DDPMScheduler, {"clip_sample": False}),
            ("euler", EulerDiscreteScheduler, {}),
            ("dpm", DPMSolverMultistepScheduler, {}),
        )
        for spacing in ("leading", "trailing", "linspace")
        if (name, spacing) != ("ddim", "linspace")  # see test_a_grid_diffusers_spaces_differently_is_named
    },
    "ddim_set_alpha_to_one_true": (DDIMScheduler, {"set_alpha_to_one": True, "clip_sample": False}, STEPS),
    "ddim_set_alpha_to_one_false": (DDIMScheduler, {"set_alpha_to_one": False, "clip_sample": False}, STEPS),
    "dpm_final_sigmas_type_sigma_min": (
        DPMSolverMultistepScheduler,
        {"final_sigmas_type": "sigma_min", "timestep_spacing": "trailing"},
        20,  # from 15 steps on diffusers' last step keeps its order (lower_order_final)
    ),
    **{
        f"{name}_rescale_betas_zero_snr": (
            cls,
            {
                "rescale_betas_zero_snr": True,
                "prediction_type": "v_prediction",
                "timestep_spacing": "trailing",
                **extra,
            },
            STEPS,
        )
        for name, cls, extra in (
            ("ddim", DDIMScheduler, {"clip_sample": False}),
            ("ddpm", DDPMScheduler, {"clip_sample": False}),
        )
    },
    **{
        f"{name}_prediction_{prediction}": (cls, {"prediction_type": prediction}, STEPS)
        for name, cls in (
            ("ddim", DDIMScheduler),
            ("ddpm", DDPMScheduler),
            ("euler", EulerDiscreteScheduler),
            ("dpm", DPMSolverMultistepScheduler),
        )
        for prediction in ("epsilon", "sample", "v_prediction")
    },
    "ddim_trained_betas": (DDIMScheduler, {"trained_betas": TRAINED}, STEPS),
    "dpm_trained_betas": (DPMSolverMultistepScheduler, {"trained_betas": TRAINED}, STEPS),
}


@pytest.fixture(scope="module")
def unet():
    return tiny_unet(seed=31)


def _folder(tmp_path, unet, cls, config):
    """A UNet folder with the scheduler's own scheduler_config.json beside it; the scheduler."""
    folder = tmp_path / "model"
    unet.save_pretrained(folder)
    scheduler = cls(num_train_timesteps=1000, **{**LINEAR, **config})
    scheduler.save_config(folder)
    return folder, scheduler


def _diffusers(scheduler, unet, steps: int) -> torch.Tensor:
    """diffusers' own loop from the Atlas's starting noise for image 0 at SEED (its generator then feeds the
    steps' noise, as the Atlas's does)."""
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(SEED)
    noise = torch.randn((1, 3, 8, 8), generator=generator)
    top = float(scheduler.alphas_cumprod[int(scheduler.timesteps[0])])
    sigma = ((1 - top) / max(top, 1e-30)) ** 0.5
    ve = isinstance(scheduler, EulerDiscreteScheduler)  # Euler's samples are x0 + sigma eps; the others' VP
    if ve:
        sigma = float(scheduler.sigmas[0])
    x = noise * sigma if ve else noise * (1 - top) ** 0.5  # the Atlas starts at sigma * noise, in VE coordinates
    for t in scheduler.timesteps:
        with torch.no_grad():
            out = unet(scheduler.scale_model_input(x, t), t).sample
        extra = {"generator": generator} if isinstance(scheduler, DDPMScheduler) else {}
        x = scheduler.step(out, t, x, **extra).prev_sample
    return x


def _ours(folder, steps: int, **changes) -> tuple[torch.Tensor, SamplerSettings]:
    loaded = load_model(local_entry(str(folder), trusted=True))
    settings = replace(folder_settings(loaded, SamplerSettings(steps=steps, batch=1, seed=SEED)), **changes)
    return run_sampler(loaded, settings).images, settings


@pytest.mark.parametrize("case", list(CASES))
def test_a_folder_is_sampled_as_diffusers_samples_it(case, unet, tmp_path):
    cls, config, steps = CASES[case]
    folder, scheduler = _folder(tmp_path, unet, cls, config)
    ours, settings = _ours(folder, steps)
    theirs = _diffusers(scheduler, unet, steps)
    assert torch.isfinite(ours).all() and 0.05 < float(ours.abs().max()) < 1e3
    diff = float((ours - theirs).abs().max())
    print(f"{case}: max |ours - diffusers| = {diff:.2e}")
    scale = max(1.0, float(theirs.abs().max()))  # 1e-4 of the sample's size where it is over 1 (epsilon models)
    assert diff <= TOL * scale
    if "clip" in case or "thresholding" in case:  # the field mattered: the run without it is elsewhere
        plain, _ = _ours(folder, steps, clip=False, thresholding=None)
        assert float((plain - theirs).abs().max()) > 100 * TOL
    if "set_alpha_to_one_false" in case or "sigma_min" in case:
        assert not settings.to_zero
    if "leading" in case:  # steps_offset moved every timestep by one
        assert settings.steps_offset == 1
        shifted, _ = _ours(folder, steps, steps_offset=0)
        assert float((shifted - theirs).abs().max()) > 10 * TOL


def test_a_grid_diffusers_spaces_differently_is_named(unet, tmp_path):
    """diffusers' DDIM steps from t to t - T // steps, not to its next timestep: with linspace spacing (or trailing
    where steps does not divide T) the state it evaluates next is not at that timestep's noise level. The Atlas's
    grid goes through the timesteps, and says so."""
    folder, _ = _folder(tmp_path, unet, DDIMScheduler, {"timestep_spacing": "linspace"})
    notes = load_model(local_entry(str(folder), trusted=True)).scheduler.unfollowed
    assert any("timestep_spacing linspace" in note for note in notes)


@pytest.mark.parametrize("cls", [EulerDiscreteScheduler, DPMSolverMultistepScheduler])
def test_a_zero_snr_end_that_is_not_a_schedule_is_named(unet, tmp_path, cls):
    """diffusers' Euler and DPM-Solver end a zero-terminal-SNR schedule at alpha_bar 2^-24, above the step before."""
    folder, _ = _folder(tmp_path, unet, cls, {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"})
    notes = load_model(local_entry(str(folder), trusted=True)).scheduler.unfollowed
    assert any("rescale_betas_zero_snr" in note for note in notes)


def test_the_settings_and_caption_say_what_came_from_the_folder(unet, tmp_path):
    folder, _ = _folder(tmp_path, unet, DDIMScheduler, {"steps_offset": 1})  # clip_sample: diffusers' default
    loaded = load_model(local_entry(str(folder), trusted=True))
    settings = folder_settings(loaded, SamplerSettings(sampler="dpmpp_2m", spacing="trailing", max_sigma=5.0))
    assert (settings.sampler, settings.spacing, settings.steps_offset, settings.clip) == ("ddim", "leading", 1, True)
    assert settings.options == {"eta": 0.0, "direction": "model"} and settings.max_sigma is None
    caption = loaded.scheduler.caption()
    assert "DDIMScheduler" in caption and "leading spacing, steps_offset 1, clip x0 to ±1" in caption
    assert loaded.scheduler.unfollowed == ()


def test_fields_the_atlas_cannot_follow_are_named(unet, tmp_path):
    folder, _ = _folder(tmp_path, unet, EulerDiscreteScheduler, {"use_karras_sigmas": True})
    assert any(
        "use_karras_sigmas" in s for s in load_model(local_entry(str(folder), trusted=True)).scheduler.unfollowed
    )
    config = json.loads((folder / "scheduler_config.json").read_text())
    (folder / "scheduler_config.json").write_text(json.dumps({**config, "_class_name": "PNDMScheduler"}))
    assert any("PNDMScheduler" in s for s in load_model(local_entry(str(folder), trusted=True)).scheduler.unfollowed)


def test_a_model_without_a_folder_config_keeps_the_page_defaults(tmp_path):
    unet = tiny_unet(seed=4)
    unet.save_pretrained(tmp_path / "bare")  # no scheduler_config.json: DDPM's defaults, the Atlas's settings
    loaded = load_model(local_entry(str(tmp_path / "bare"), trusted=True))
    base = SamplerSettings(steps=7)
    assert loaded.scheduler is None and folder_settings(loaded, base) is base


def test_zoo_compare_samples_a_folder_as_its_config_says_and_gives_each_name_a_row(unet, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder, _ = _folder(tmp_path, unet, DDIMScheduler, {"steps_offset": 1, "clip_sample_range": 0.5})
    out = tmp_path / "out"
    args = ["compare", str(folder), str(folder), "--steps", str(STEPS), "--images", "1", "--seed", str(SEED)]
    assert zoo_cli([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "leading spacing, steps_offset 1, clip x0 to ±0.5" in printed
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [r["checkpoint"] for r in rows] == [f"{folder} (#1)", f"{folder} (#2)"]
    assert all(r["source"].startswith("local: ") and r["sampler"] == "ddim" and r["spacing"] == "leading" for r in rows)
    with Image.open(out / "grid.png") as grid:  # two panels, one per name
        assert grid.width > 2 * 8
