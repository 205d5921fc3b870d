"""Sampling with a live view: the reverse process shown as it runs, a Stop button, partial results kept; then
the finished run (grid, speed, the noise along the way, PNG and GIF export), kept in the session."""

from __future__ import annotations

import streamlit as st

from core.data.images import enlarge, png_bytes, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.diffusion.trajectory import Frame
from core.labs.pixel import SamplerSettings, SamplingResult, run_sampler
from ui.common.live import Throttle
from ui.samplers.figures import frame_grids, noise_chart, trajectory_gif
from zoo.loaders import LoadedModel

MIN_REFRESH_S = 0.15


def generate_live(loaded: LoadedModel, settings: SamplerSettings, key: str) -> SamplingResult:
    """Run the sampler, refreshing x_t / x_0 / noise about 25 times; the latest view survives a Stop."""
    holder = st.empty()  # the live view, cleared when the run finishes (the result is drawn below it)
    with holder.container():
        progress = st.progress(0.0, text="Starting…")
        st.button("Stop", key=f"{key}-stop", help="Stops after the current step; what was shown so far stays.")
        slots = [c.empty() for c in st.columns(3)]

    throttle = Throttle(MIN_REFRESH_S)

    def render(frame: Frame) -> None:
        if not throttle.ready(final=frame.index == settings.steps - 1):
            return
        grids = frame_grids(frame)
        captions = (f"x_t at σ = {frame.sigma:.3g}", "predicted x₀", "predicted noise ε")
        for slot, grid, caption in zip(slots, grids, captions, strict=True):
            slot.image(grid, caption=caption, width="stretch")
        progress.progress((frame.index + 1) / settings.steps, text=f"Step {frame.index + 1} of {settings.steps}")
        st.session_state[f"{key}-partial"] = (frame.index + 1, settings.steps, grids)

    result = st.session_state[f"{key}-result"] = run_sampler(loaded, settings, render)
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


def show_result(key: str) -> None:
    """The last finished run of this session: its grid, speed, noise chart and downloads."""
    result = st.session_state.get(f"{key}-result")
    if result is None:
        return
    s = result.settings
    st.subheader(f"{SAMPLERS[s.sampler].title}, {s.steps} steps")
    grid = enlarge(tile(to_uint8(result.images)), 512)
    st.image(grid, caption=f"seeds {s.seed} to {s.seed + s.batch - 1}", width=min(640, grid.shape[1]))
    speed = st.columns(3)
    speed[0].metric("Seconds", f"{result.seconds:.2f}")
    speed[1].metric("Images/s", f"{s.batch / result.seconds:.1f}")
    speed[2].metric("Model calls (NFE)", s.nfe)
    st.plotly_chart(noise_chart(result.recorder, result.images), width="stretch")
    down = st.columns(2)
    down[0].download_button("Download the grid (PNG)", png_bytes(grid), "samples.png", "image/png", key=f"{key}-png")
    gif = lambda: trajectory_gif(result.recorder, result.images)  # noqa: E731 (built only when clicked)
    down[1].download_button("Download the trajectory (GIF)", gif, "trajectory.gif", "image/gif", key=f"{key}-gif")
