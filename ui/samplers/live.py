"""Sampling with a live view: the reverse process shown as it runs, a Stop button, partial results kept (after a
Stop, or at the server's limit per job); then the finished run (grid, speed, the noise along the way, PNG and GIF
export), kept in the session."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.data.images import enlarge, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.diffusion.trajectory import Frame
from core.labs import provenance
from core.labs.samplers import SamplerSettings, SamplingResult, run_sampler
from core.training.budget import TimeLimitError, limited
from ui.common.live import ProgressBar, Throttle
from ui.common.memo import Memo
from ui.samplers.controls import guide_of
from ui.samplers.figures import frame_grids, noise_chart, run_gif, run_panels
from zoo.loaders import LoadedModel

MIN_REFRESH_S = 0.15


def generate_live(loaded: LoadedModel, settings: SamplerSettings, key: str) -> SamplingResult | None:
    """Run the sampler, refreshing x_t / x_0 / noise about 25 times; the latest view survives a Stop, and is shown
    with the reason when the run reaches the server's limit per job (None then)."""
    holder = st.empty()  # the live view, cleared when the run finishes (the result is drawn below it)
    with holder.container():
        progress = ProgressBar(st.progress(0.0, text="Starting…"), every=0.0)  # drawn when the view is
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
        progress.show((frame.index + 1) / settings.steps, f"Step {frame.index + 1} of {settings.steps}")
        st.session_state[f"{key}-partial"] = (frame.index + 1, settings.steps, grids)

    try:
        with limited():  # a job of this session: stopped at the server's limit per job
            result = run_sampler(loaded, settings, render, guide=guide_of(settings))
    except TimeLimitError as stopped:
        holder.empty()
        show_stopped(key, str(stopped))
        return None
    _finished(key).put(RunKey(loaded.name, settings), FinishedRun(title=loaded.title, result=result, model=loaded))
    holder.empty()
    st.session_state.pop(f"{key}-partial", None)
    return result


def show_stopped(key: str, why: str | None = None) -> None:
    """After a Stop or at the limit per job (`why`), show where the run got to."""
    partial = st.session_state.pop(f"{key}-partial", None)
    if partial is None:
        if why:
            st.warning(why)
        return
    done, total, grids = partial
    reason = f" {why}" if why else ""
    st.warning(f"Stopped at step {done} of {total}.{reason} This is where the samples had got to.")
    for col, grid, caption in zip(st.columns(3), grids, ("x_t", "predicted x₀", "predicted noise ε"), strict=True):
        col.image(grid, caption=caption, width="stretch")


@dataclass(frozen=True)
class RunKey:
    """What a finished run was made with: the model's name and the sampler settings."""

    model: str
    settings: SamplerSettings


@dataclass(eq=False, kw_only=True)
class FinishedRun:
    """The session's last finished run, and its exports once built (so a second download needs no rerun)."""

    title: str
    result: SamplingResult
    model: LoadedModel | None = None  # what made it, for the downloads' record
    record: dict | None = None
    gif: bytes | None = None


def _finished(key: str) -> Memo[RunKey, FinishedRun]:
    """The last finished run of the sampling view `key` (its widgets' prefix)."""
    return Memo(f"{key}-result")


def _conditioning(s: SamplerSettings) -> str:
    """ ", class 3 · APG w = 3 (eta 0, beta -0.5)": the class and its guidance, as a run's title says them."""
    if s.label is None:
        return ""
    guided = "" if s.guiding.neutral else f" · {s.guiding.label()}" + (f" by {s.guide}" if s.guide else "")
    return f", class {s.label}{guided}"


def show_result(key: str, model: str | None, settings: SamplerSettings | None) -> None:
    """The last finished run of this session: its grid, speed, every recorded step on a slider (and played),
    the noise along the way and the downloads; marked as such when the model or settings have changed since."""
    found = _finished(key).latest()
    if found is None:
        return
    made_for, run = found
    result, s = run.result, run.result.settings
    st.subheader(f"{SAMPLERS[s.sampler].title}, {s.steps} step{'s' * (s.steps != 1)}{_conditioning(s)}")
    if made_for.model != model or made_for.settings != settings:
        st.info(f"From earlier settings ({run.title}): press **Generate** for the current ones.")
    grid = enlarge(tile(to_uint8(result.images)), 512)
    st.image(grid, caption=f"seeds {s.seed} to {s.seed + s.batch - 1}", width=min(640, grid.shape[1]))
    speed = st.columns(3)
    speed[0].metric("Seconds", f"{result.seconds:.2f}")
    speed[1].metric("Images/s", f"{s.batch / result.seconds:.1f}")
    speed[2].metric("Model calls (NFE)", s.nfe)
    st.markdown("**The run, step by step**: the state x_t, the predicted x̂₀ and the predicted noise ε̂")
    frames = {f.index: f for f in result.recorder.frames}
    if run.record is None:  # the settings every download carries (core/labs/provenance.py)
        run.record = provenance.record(run.model, s)
    if run.gif is None:
        run.gif = run_gif(result.recorder, run.record)
    left, right = st.columns([4, 1])
    play = right.toggle("▶ Play", key=f"{key}-play", help="The recorded steps as an animation, from noise to the end.")
    if play:
        left.image(run.gif, width="stretch")
    else:
        index = left.select_slider(
            "Step",
            list(frames),
            value=max(frames),
            key=f"{key}-frame",
            format_func=lambda i: f"{i + 1} of {s.steps} (σ = {frames[i].sigma:.3g})",
        )
        left.image(run_panels(frames[index]), width="stretch")
    st.plotly_chart(noise_chart(result.recorder, result.images), width="stretch")
    st.caption(
        "Right: both shares near 1 mean the model takes out the noise the schedule plans. The noise left falls "
        "below 1 once a sample has settled, and a stochastic sampler's rises above 1 where it adds fresh noise."
    )
    down = st.columns(2)
    # on_click="ignore": a download needs no rerun, and a rerun would drop the other button's file
    png = provenance.png(grid, run.record)
    down[0].download_button(
        "Download the grid (PNG)", png, "samples.png", "image/png", key=f"{key}-png", on_click="ignore"
    )
    down[1].download_button(
        "Download the run (GIF)", run.gif, "run.gif", "image/gif", key=f"{key}-gif", on_click="ignore"
    )
