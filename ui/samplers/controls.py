"""The Samplers page's settings: sampler, steps and spacing, its options, noise switch-off, the sigma cap,
clipping, seed, batch, class and guidance."""

from __future__ import annotations

import streamlit as st

from core.diffusion.guidance import METHODS, Guidance
from core.diffusion.samplers import NOISE_UNTIL, SAMPLERS
from core.diffusion.schedules import SPACINGS
from core.labs.samplers import MAX_BATCH, TYPED, SamplerSettings
from ui.common.cache import registry, zoo_model
from ui.common.models import guide_models
from ui.common.widgets import attempt, follow_range, guidance_settings, option_widget, typed_grid
from zoo.loaders import LoadedModel


def sampler_settings(key: str, loaded: LoadedModel) -> SamplerSettings:
    """Sampler, steps, spacing, its options, noise switch-off, seed, batch, class and guidance."""
    names = list(SAMPLERS)
    sampler = st.selectbox(
        "Sampler", names, index=names.index("dpmpp_2m"), format_func=lambda n: SAMPLERS[n].title, key=f"{key}-sampler"
    )
    spec = SAMPLERS[sampler]
    schedule = loaded.schedule
    cap = schedule.sampling_cap
    cols = st.columns(2)
    spacings = (*SPACINGS, TYPED)
    spacing = cols[1].selectbox(
        "Spacing",
        spacings,
        index=spacings.index("trailing"),
        key=f"{key}-spacing",
        help="Where the steps sit: the schedule's own timesteps (leading, trailing, linspace), even in its time t, "
        "even in log-SNR, Karras ρ = 7, or a grid you type (the Forward page draws them all).",
    )
    grid = attempt(typed_grid, st, f"{key}-typed", schedule.sigma_max) if spacing == TYPED else None
    usable = schedule.usable_steps(cap)
    if grid is not None:
        steps = len(grid) - 1
        cols[0].number_input("Steps", value=steps, disabled=True, key=f"{key}-typed-steps", help="The typed grid's.")
    else:
        steps = follow_range(
            cols[0], "number_input", "Steps", 1, usable, 20, key=f"{key}-steps", because="this model's schedule"
        )
    options = {o.name: option_widget(o, f"{key}-{sampler}-{o.name}") for o in spec.options}
    noise_until = None
    if spec.injects_noise(options) and st.toggle("Stop adding noise after a step", key=f"{key}-quiet"):
        noise_until = follow_range(
            st,
            "slider",
            NOISE_UNTIL.label,
            0,
            int(steps),
            int(steps) // 2,
            key=f"{key}-quiet-step",
            because=f"a run of {steps} step" + "s" * (steps != 1),
            help=NOISE_UNTIL.help,
        )
    max_sigma = None
    if cap is not None:
        capped = st.toggle(
            f"Start at σ ≤ {cap:.0f}",
            value=True,
            help=f"This schedule ends at σ = {schedule.sigma_max:.3g}, where an ε-model's errors are "
            "multiplied by σ; starting a little lower is what diffusers recommends for the cosine schedule.",
            key=f"{key}-cap",
        )
        max_sigma = cap if capped else None
    clip = st.toggle(
        "Clip predicted x₀ to [−1, 1]",
        value=True,
        help="DDPM's reference sampler does this; it stops an early, noisy x₀ estimate from derailing a sample.",
        key=f"{key}-clip",
    )
    cols = st.columns(2)
    seed = cols[0].number_input("Seed (image k uses seed + k)", 0, 2**31 - 1 - MAX_BATCH, 0, key=f"{key}-seed")
    batch = cols[1].slider("Images", 1, MAX_BATCH, 16, key=f"{key}-batch")
    label, guidance, guide = None, 1.0, None
    if loaded.num_classes:
        classes = _class_names(loaded)
        choice = st.selectbox(
            "Class",
            ["none", *range(loaded.num_classes)],
            format_func=lambda c: classes.get(c, "none (unconditional)"),
            key=f"{key}-class",
        )
        label = None if choice == "none" else int(choice)
        if label is not None and loaded.supports_guidance:
            guidance, guide = _guidance(key, loaded)
    return SamplerSettings(
        sampler=sampler,
        steps=int(steps),
        spacing=spacing,
        grid=None if grid is None else tuple(grid.tolist()),
        options=options,
        noise_until=noise_until,
        max_sigma=max_sigma,
        seed=int(seed),
        batch=int(batch),
        label=label,
        guidance=guidance,
        guide=guide,
        clip=clip,
    )


def _guidance(key: str, loaded: LoadedModel) -> tuple[Guidance, str | None]:
    """The guidance method, its scale and settings, and autoguidance's guide (a zoo model's name)."""
    guides = guide_models(loaded)
    methods = [m for m in METHODS if m != "auto" or guides]
    method = st.selectbox(
        "Guidance",
        methods,
        format_func=METHODS.get,
        key=f"{key}-guidance",
        help="How the class is pushed: CFG, CFG with its noise prediction rescaled (Lin et al. 2024), APG "
        "(Sadat et al. 2024), CFG++ (Chung et al. 2024), or autoguidance by a weaker model of the same classes "
        "(Karras et al. 2024). The Guidance page measures what each trades.",
    )
    if method == "cfg++":
        scale = st.slider(
            "CFG++ λ", 0.0, 1.0, 0.6, 0.05, help="0: unconditional; 1: the strongest.", key=f"{key}-lambda"
        )
        return Guidance(method=method, scale=scale), None
    scale = st.slider(
        "Guidance scale",
        0.0,
        10.0,
        3.0,
        0.5,
        help="1 = the conditional model, 0 = the reference alone.",
        key=f"{key}-cfg",
    )
    settings = guidance_settings(key, [method])
    guide = None
    if method == "auto":
        guide = st.selectbox("Guide (weaker model)", list(guides), format_func=guides.get, key=f"{key}-guide")
    return Guidance(method=method, scale=scale, **settings), guide


def guide_of(settings: SamplerSettings):
    """Autoguidance's guide as a denoiser (None where the settings name none)."""
    return None if settings.guide is None else zoo_model(settings.guide).denoiser


def _class_names(loaded: LoadedModel) -> dict[object, str]:
    data = loaded.entry.data
    names = (
        registry().datasets[data].classes if data in registry().datasets else tuple(map(str, range(loaded.num_classes)))
    )
    return {k: f"{k}: {n}" if n != str(k) else str(k) for k, n in enumerate(names)}
