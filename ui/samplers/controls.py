"""The Samplers page's settings: sampler, steps and spacing, its options, noise switch-off, the sigma cap,
clipping, seed, batch, class and guidance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.diffusion.guidance import METHODS, Guidance
from core.diffusion.samplers import NOISE_UNTIL, SAMPLERS
from core.diffusion.schedules import SPACINGS, TIMESTEP_SPACINGS
from core.labs.samplers import MAX_BATCH, TYPED, SamplerSettings, folder_settings
from ui.common.cache import registry, zoo_model
from ui.common.models import guide_models
from ui.common.widgets import attempt, follow_range, guidance_settings, option_widget, typed_grid
from zoo.loaders import LoadedModel

FOLDER_KEYS = ("sampler", "spacing", "cap", "clip", "clip-range", "threshold", "ratio", "max", "offset", "to-zero")


def start_from(key: str, loaded: LoadedModel, own: SamplerSettings) -> None:
    """When the model is not the one the widgets were last set for, set them (before they are drawn) to what it
    starts from (`own`: its folder's config, else the page's defaults). Values are set, not cleared: a browser
    sends a cleared widget's old value back with the next click."""
    state = st.session_state
    if state.get(f"{key}-defaults-of") == loaded.name:
        return
    first = f"{key}-defaults-of" not in state
    state[f"{key}-defaults-of"] = loaded.name
    if first:
        return  # the page's first model: its widgets start at these defaults, or at what was set before they were
    made_for = loaded.scheduler.steps if loaded.scheduler is not None else None
    state[f"{key}-sampler"], state[f"{key}-spacing"] = own.sampler, own.spacing
    if made_for is not None or state.pop(f"{key}-made-for", None) is not None:
        state[f"{key}-steps"] = own.steps
    if made_for is not None:
        state[f"{key}-made-for"] = made_for
    for option, value in own.options.items():
        state[f"{key}-{own.sampler}-{option}"] = value
    state[f"{key}-clip"], state[f"{key}-cap"] = own.clip, loaded.scheduler is None  # a pipeline starts at the top
    if loaded.scheduler is not None:  # the folder's own controls
        ratio, top = own.thresholding or (0.995, 1.0)
        state[f"{key}-clip-range"], state[f"{key}-threshold"] = own.clip_range, own.thresholding is not None
        state[f"{key}-ratio"], state[f"{key}-max"] = ratio, top
        state[f"{key}-offset"], state[f"{key}-to-zero"] = own.steps_offset, own.to_zero
        state[f"{key}-one-more"] = own.one_more


def model_changed(key: str) -> Callable[[], None]:
    """The model picker's callback: the settings a folder's scheduler config gives (sampler, its options, spacing,
    the grid's start and end, clipping) start again from the newly picked model's defaults (`start_from` sets them
    as the page draws); what the person set for one model stays while it stays picked."""

    def forget() -> None:
        names = [f"{key}-{name}" for name in FOLDER_KEYS] + [f"{key}-one-more"]
        names += [f"{key}-{sampler}-{o.name}" for sampler, spec in SAMPLERS.items() for o in spec.options]
        for name in names:
            st.session_state.pop(name, None)

    return forget


def folder_notes(loaded: LoadedModel) -> None:
    """Under the model picker: what the model's own scheduler config set (its caption), and a warning naming each
    field the Atlas does not follow."""
    if loaded.scheduler is None:
        return
    st.caption(loaded.scheduler.caption() + " The settings below start there.")
    for sentence in loaded.scheduler.unfollowed:
        st.warning(f"Not followed: {sentence}.", icon=":material/warning:")


def sampler_settings(key: str, loaded: LoadedModel) -> SamplerSettings:
    """Sampler, steps, spacing, its options, noise switch-off, seed, batch, class and guidance. A model with its
    own scheduler config (`loaded.scheduler`) starts from what it asks (labs/samplers.folder_settings); each can
    be changed, and a caption names those changed from the folder's."""
    folder_notes(loaded)
    own = folder_settings(loaded, SamplerSettings(sampler="dpmpp_2m", spacing="trailing", steps=20))
    from_folder = loaded.scheduler is not None
    start_from(key, loaded, own)
    names = list(SAMPLERS)
    sampler = st.selectbox(
        "Sampler",
        names,
        index=names.index(own.sampler),
        format_func=lambda n: SAMPLERS[n].title,
        key=f"{key}-sampler",
    )
    spec = SAMPLERS[sampler]
    schedule = loaded.schedule
    cap = schedule.sampling_cap
    cols = st.columns(2)
    spacings = (*SPACINGS, TYPED)
    spacing = cols[1].selectbox(
        "Spacing",
        spacings,
        index=spacings.index(own.spacing),
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
            cols[0], "number_input", "Steps", 1, usable, own.steps, key=f"{key}-steps", because="this model's schedule"
        )
    defaults = own.options if sampler == own.sampler else {}
    options = {
        o.name: option_widget(o, f"{key}-{sampler}-{o.name}", default=defaults.get(o.name)) for o in spec.options
    }
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
            value=not from_folder,  # a pipeline starts at its schedule's top
            help=f"This schedule ends at σ = {schedule.sigma_max:.3g}, where an ε-model's errors are "
            "multiplied by σ; starting a little lower is what diffusers recommends for the cosine schedule.",
            key=f"{key}-cap",
        )
        max_sigma = cap if capped else None
    clip = st.toggle(
        "Clip predicted x₀ to [−1, 1]" if not from_folder else "Clip predicted x₀",
        value=own.clip,
        help="DDPM's reference sampler does this; it stops an early, noisy x₀ estimate from derailing a sample.",
        key=f"{key}-clip",
    )
    pipeline = _pipeline(key, own, spacing, clip) if from_folder else {}
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
    settings = SamplerSettings(
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
        **pipeline,
    )
    made_for = loaded.scheduler.steps if loaded.scheduler is not None else None
    if from_folder and (changed := changed_from_folder(settings, own, made_for)):
        st.caption(f"Changed from the folder's: {', '.join(changed)}.")
    return settings


def _pipeline(key: str, own: SamplerSettings, spacing: str, clip: bool) -> dict[str, Any]:
    """A folder model's further settings, starting at its config's: the clipping range or dynamic thresholding in
    its place, steps_offset (leading spacing), where the grid ends, and DPM-Solver's n + 1 timesteps."""
    out: dict[str, Any] = {}
    if clip:
        out["clip_range"] = float(
            st.number_input("Clip range r (x₀ to [−r, r])", 0.01, 1e6, own.clip_range, key=f"{key}-clip-range")
        )
    ratio, top = own.thresholding or (0.995, 1.0)
    if st.toggle(
        "Dynamic thresholding (in place of clipping)",
        value=own.thresholding is not None,
        key=f"{key}-threshold",
        help="Imagen's: each x₀ estimate clipped to its own quantile s (at least 1, at most the max) and divided by s.",
    ):
        a, b = st.columns(2)
        ratio = a.number_input("Quantile", 0.5, 1.0, ratio, 0.005, format="%.3f", key=f"{key}-ratio")
        top = b.number_input("Max value", 1.0, 1e6, top, key=f"{key}-max")
        out["thresholding"] = (float(ratio), float(top))
    a, b = st.columns(2)
    if spacing == "leading":
        out["steps_offset"] = int(a.number_input("steps_offset", 0, 100, own.steps_offset, key=f"{key}-offset"))
    out["to_zero"] = b.toggle(
        "End at σ = 0",
        value=own.to_zero,
        key=f"{key}-to-zero",
        help="Off: the grid ends at the schedule's smallest σ (diffusers' set_alpha_to_one = false, "
        "final_sigmas_type = sigma_min).",
    )
    if spacing in TIMESTEP_SPACINGS:
        out["one_more"] = st.toggle(
            "n + 1 timesteps, the lowest dropped (DPM-Solver's)", value=own.one_more, key=f"{key}-one-more"
        )
    return out


def changed_from_folder(settings: SamplerSettings, own: SamplerSettings, made_for: int | None = None) -> list[str]:
    """The names of the settings that differ from what the folder's config gives (`own`; `made_for`: the steps a
    few-step model was made for)."""
    spec = SAMPLERS[settings.sampler]
    full = {o.name: o.default for o in spec.options} | (own.options if settings.sampler == own.sampler else {})
    checks = {
        "sampler": settings.sampler != own.sampler,
        "options": settings.sampler == own.sampler and settings.options != full,
        "spacing": settings.spacing != own.spacing,
        "steps_offset": settings.spacing == "leading" and settings.steps_offset != own.steps_offset,
        "the σ cap": settings.max_sigma != own.max_sigma,
        "clipping": (settings.clip, settings.clip_range if settings.clip else None)
        != (own.clip, own.clip_range if own.clip else None),
        "thresholding": settings.thresholding != own.thresholding,
        "the grid's end": settings.to_zero != own.to_zero,
        "n + 1 timesteps": settings.one_more != own.one_more,
        "the step count it was made for": made_for is not None and settings.steps != made_for,
    }
    return [name for name, differs in checks.items() if differs]


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
