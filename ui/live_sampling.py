"""Sampling with a live view: the reverse process shown as it runs, a stop button, partial results kept."""

from __future__ import annotations

import streamlit as st

from core.trajectory import Frame, Throttle
from ui.sampler_figures import frame_grids
from ui.sampling_run import SamplerSettings, SamplingResult, run_sampler
from zoo.loaders import LoadedModel

MIN_REFRESH_S = 0.15


def generate_live(loaded: LoadedModel, settings: SamplerSettings, key: str) -> SamplingResult:
    """Run the sampler, refreshing x_t / x_0 / noise about 25 times; the latest view survives a Stop."""
    holder = st.empty()  # the live view, cleared when the run finishes (the result is drawn below it)
    with holder.container():
        progress = st.progress(0.0, text="Starting…")
        st.button("Stop", key=f"{key}-stop", help="Stops after the current step; what was shown so far stays.")
        slots = [c.empty() for c in st.columns(3)]

    def render(frame: Frame) -> None:
        grids = frame_grids(frame)
        captions = (f"x_t at σ = {frame.sigma:.3g}", "predicted x₀", "predicted noise ε")
        for slot, grid, caption in zip(slots, grids, captions, strict=True):
            slot.image(grid, caption=caption, width="stretch")
        progress.progress((frame.index + 1) / settings.steps, text=f"Step {frame.index + 1} of {settings.steps}")
        st.session_state[f"{key}-partial"] = (frame.index + 1, settings.steps, grids)

    on_frame = Throttle(render, settings.steps, MIN_REFRESH_S)
    result = run_sampler(loaded, settings, on_frame)
    holder.empty()
    st.session_state.pop(f"{key}-partial", None)
    return result


def show_stopped(key: str) -> None:
    """After a Stop (the run was interrupted), show where it got to."""
    partial = st.session_state.pop(f"{key}-partial", None)
    if partial is None:
        return
    done, total, grids = partial
    st.warning(f"Stopped at step {done} of {total}. This is where the samples had got to.")
    for col, grid, caption in zip(st.columns(3), grids, ("x_t", "predicted x₀", "predicted noise ε"), strict=True):
        col.image(grid, caption=caption, width="stretch")
