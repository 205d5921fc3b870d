"""Widgets of the Samplers page: the model (zoo entry or typed Hub repo) and the sampler settings."""

from __future__ import annotations

import streamlit as st

from core.errors import AtlasError
from core.samplers import SAMPLERS
from core.schedules import DEFAULT_MAX_SIGMA, SPACINGS
from ui.cache import hub_model, registry, zoo_model
from ui.sampling_run import MAX_BATCH, SamplerSettings
from ui.zoo_summary import availability
from zoo.loaders import LoadedModel

TYPED = "__typed__"


def pixel_models() -> dict[str, str]:
    """Zoo pixel models, name -> label with availability, ready ones first."""
    entries = [m for m in registry().models.values() if m.family == "pixel"]
    labels = {m.name: f"{m.title} · {availability(m)}" for m in entries}
    ready = sorted(labels, key=lambda n: not labels[n].endswith(("bundled", "cached")))
    return {n: labels[n] for n in ready}


def compatible_models(loaded: LoadedModel) -> dict[str, str]:
    """Other zoo pixel models ready here with the same sample shape (so they can share the same noise)."""
    return {
        m.name: m.title
        for m in registry().models.values()
        if m.family == "pixel"
        and m.name != loaded.entry.name
        and m.sample_shape == loaded.sample_shape
        and availability(m) in ("bundled", "cached")
    }


def pick_model(key: str, label: str = "Model") -> LoadedModel | None:
    """A loaded pixel model, or None with the reason shown (offline, bad repo id, broken file)."""
    options = pixel_models()
    choice = st.selectbox(label, [*options, TYPED], format_func=lambda n: options.get(n, "A Hub repo id…"), key=key)
    try:
        if choice == TYPED:
            repo = st.text_input("Hub repo id (owner/name) holding a diffusers UNet2DModel", key=f"{key}-repo")
            if not repo.strip():
                st.info("Type a repo id, for example google/ddpm-cifar10-32.")
                return None
            loaded = hub_model(repo)
        else:
            loaded = zoo_model(choice)
    except AtlasError as e:
        st.error(str(e))
        return None
    entry = loaded.entry
    note = " · **a GPU is recommended**" if entry.gpu_recommended and loaded.device.type == "cpu" else ""
    st.caption(
        f"{entry.description} {loaded.param_count / 1e6:.2f}M parameters, {entry.prediction_type} prediction, "
        f"{loaded.schedule.name} schedule (T = {loaded.schedule.num_steps}), {entry.source}{note}."
    )
    return loaded


def _option_widget(key: str, name: str, option) -> object:
    if option.choices:
        return st.selectbox(
            option.name, option.choices, index=option.choices.index(option.default), help=option.help, key=key
        )
    if name == "order":
        return st.slider(option.name, int(option.low), int(option.high), int(option.default), help=option.help, key=key)
    return st.slider(
        option.name, float(option.low), float(option.high), float(option.default), help=option.help, key=key
    )


def sampler_settings(key: str, loaded: LoadedModel) -> SamplerSettings:
    """Sampler, steps, spacing, its options, noise switch-off, seed, batch, class and guidance."""
    names = list(SAMPLERS)
    sampler = st.selectbox(
        "Sampler", names, index=names.index("dpmpp_2m"), format_func=lambda n: SAMPLERS[n].title, key=f"{key}-sampler"
    )
    spec = SAMPLERS[sampler]
    usable = loaded.schedule.usable_steps(DEFAULT_MAX_SIGMA) if loaded.schedule.sigma_max > DEFAULT_MAX_SIGMA else None
    cols = st.columns(2)
    steps = cols[0].number_input("Steps", 1, usable or loaded.schedule.num_steps, 20, key=f"{key}-steps")
    spacing = cols[1].selectbox("Spacing", SPACINGS, index=SPACINGS.index("trailing"), key=f"{key}-spacing")
    options = {o.name: _option_widget(f"{key}-{sampler}-{o.name}", o.name, o) for o in spec.options}
    noise_until = None
    if spec.stochastic and st.toggle("Stop adding noise after a step", key=f"{key}-quiet"):
        noise_until = st.slider("Last noisy step", 0, int(steps), int(steps) // 2, key=f"{key}-quiet-step")
    max_sigma = None
    if usable is not None:
        capped = st.toggle(
            f"Start at σ ≤ {DEFAULT_MAX_SIGMA:.0f}",
            value=True,
            help=f"This schedule ends at σ = {loaded.schedule.sigma_max:.3g}, where an ε-model's errors are "
            "multiplied by σ; starting a little lower is what diffusers recommends for the cosine schedule.",
            key=f"{key}-cap",
        )
        max_sigma = DEFAULT_MAX_SIGMA if capped else None
    clip = st.toggle(
        "Clip predicted x₀ to [−1, 1]",
        value=True,
        help="DDPM's reference sampler does this; it stops an early, noisy x₀ estimate from derailing a sample.",
        key=f"{key}-clip",
    )
    cols = st.columns(2)
    seed = cols[0].number_input("Seed (image k uses seed + k)", 0, 2**31 - 1 - MAX_BATCH, 0, key=f"{key}-seed")
    batch = cols[1].slider("Images", 1, MAX_BATCH, 16, key=f"{key}-batch")
    label, guidance = None, 1.0
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
            guidance = st.slider(
                "Guidance scale",
                0.0,
                10.0,
                3.0,
                0.5,
                help="1 = the conditional model, 0 = unconditional.",
                key=f"{key}-cfg",
            )
    return SamplerSettings(
        sampler, int(steps), spacing, options, noise_until, max_sigma, int(seed), int(batch), label, guidance, clip
    )


def _class_names(loaded: LoadedModel) -> dict[object, str]:
    data = loaded.entry.data
    names = (
        registry().datasets[data].classes if data in registry().datasets else tuple(map(str, range(loaded.num_classes)))
    )
    return {k: f"{k}: {n}" if n != str(k) else str(k) for k, n in enumerate(names)}
