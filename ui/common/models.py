"""Choosing image models, for the pages that sample them (Samplers, Compare checkpoints), and the sidebar's
line on what the zoo has ready."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui.common.cache import hub_model, registry, zoo_model
from ui.common.widgets import attempt
from zoo.hub import hub_settings
from zoo.loaders import LoadedModel, availability
from zoo.registry import Registry

TYPED = "__typed__"
READY = ("bundled", "cached")


def pixel_models() -> dict[str, str]:
    """Zoo pixel models, name -> label with availability, ready ones first."""
    entries = [m for m in registry().models.values() if m.family == "pixel"]
    labels = {m.name: f"{m.title} · {availability(m)}" for m in entries}
    ready = sorted(labels, key=lambda n: not labels[n].endswith(READY))
    return {n: labels[n] for n in ready}


def compatible_models(loaded: LoadedModel) -> dict[str, str]:
    """Other zoo pixel models ready here with the same sample shape (so they can share the same noise)."""
    return {
        m.name: m.title
        for m in registry().models.values()
        if m.family == "pixel"
        and m.name != loaded.name
        and m.sample_shape == loaded.sample_shape
        and availability(m) in READY
    }


def guide_models(loaded: LoadedModel) -> dict[str, str]:
    """The zoo models that can guide `loaded` by autoguidance: compatible ones with the same classes."""
    return {
        name: title
        for name, title in compatible_models(loaded).items()
        if registry().model(name).num_classes == loaded.num_classes
    }


def pick_model(key: str, label: str = "Model", on_change: Callable[[], None] | None = None) -> LoadedModel | None:
    """A loaded pixel model, or None with the reason shown (offline, bad repo id, broken file). `on_change` runs
    when the person picks another model or types another repo id (before the page's widgets are drawn)."""
    options = pixel_models()
    choice = st.selectbox(
        label,
        [*options, TYPED],
        format_func=lambda n: options.get(n, "A Hub repo id…"),
        key=key,
        on_change=on_change,
    )
    if choice == TYPED:
        repo = st.text_input(
            "Hub repo id (owner/name) holding a diffusers UNet2DModel",
            key=f"{key}-repo",
            max_chars=200,
            on_change=on_change,
        )
        if not repo.strip():
            st.info("Type a repo id, for example google/ddpm-cifar10-32.")
            return None
        loaded = attempt(hub_model, repo)
    else:
        loaded = attempt(zoo_model, choice)
    if loaded is None:
        return None
    entry = loaded.entry
    note = " · **a GPU is recommended**" if entry.gpu_recommended and loaded.device.type == "cpu" else ""
    st.caption(
        f"{entry.description} {loaded.param_count / 1e6:.2f}M parameters, {entry.prediction_type} prediction, "
        f"{loaded.schedule.name} schedule (T = {loaded.schedule.num_steps}), {entry.source}{note}."
    )
    return loaded


def zoo_status(registry: Registry) -> str:
    """One line for the sidebar: how many models are usable now, and whether the Hub is switched off."""
    states = [availability(m) for m in registry.models.values()]
    usable = sum(s in READY for s in states)
    mode = "offline mode" if hub_settings().offline else "Hub on"
    return f"Zoo: {usable} of {len(states)} models ready here · {mode}"
