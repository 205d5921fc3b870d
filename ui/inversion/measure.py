"""The digits tab's error measurement: held-out digits (from digit B on) round-tripped at every sampler and step
count chosen, and (a class bound in) at every guidance scale at the page's sampler and steps. The plan is
core/labs/inversion.MeasurePlan; its rows are kept as they finish, so a Stop keeps them."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st
import torch

from core.diffusion.inversion import INVERTIBLE
from core.diffusion.samplers import SAMPLERS
from core.labs import inversion as inv
from core.labs.guidance.sweep import SCALES
from core.labs.samplers import ImageModel, seconds_per_image
from ui.common.live import Throttle, job_estimate
from ui.common.widgets import run_job
from ui.inversion import figures, state
from ui.inversion.shared import LADDER_SAMPLERS

STEP_CHOICES = (2, 5, 10, 20, 50, 100, 200)


def _run(key: state.MeasureKey, plan: inv.MeasurePlan, model: ImageModel, progress, redraw) -> None:
    """Digits #first to #end - 1 through the plan, with the class of each bound in when the plan is guided."""
    x0 = torch.stack([state.data_digit(i)[0] for i in range(key.first, key.end)])
    labels = torch.from_numpy(state.held_out().labels[key.first : key.end].copy()) if plan.guided else None
    rows = inv.measure(
        plan,
        lambda w: inv.image_denoiser(model, labels, w, batch=len(x0)),
        x0,
        lambda k: model.schedule.capped_sigmas(k).float(),
    )
    state.measure(key, plan, rows, progress, redraw)


def measure_view(model: ImageModel, name: str, sampler: str, steps: int, first: int, guided: bool) -> None:
    st.markdown("**Round-trip error against the steps** (and the guidance scale), on held-out digits")
    a, b, c = st.columns([1, 3, 2])
    images = int(a.slider("Digits", 1, inv.MAX_IMAGES, 2, key="inv-px-m-images"))
    samplers = b.multiselect(
        "Samplers",
        INVERTIBLE,
        default=list(LADDER_SAMPLERS),
        key="inv-px-m-samplers",
        format_func=lambda n: SAMPLERS[n].title,
    )
    ladder = c.multiselect("Steps", list(STEP_CHOICES), default=[5, 10, 20, 50], key="inv-px-m-steps")
    scale_sweep = guided and st.toggle(
        f"Also against the guidance scale ({SAMPLERS[sampler].title}, {steps} steps)", value=True, key="inv-px-m-scale"
    )
    if not samplers or not ladder:
        st.info("Choose at least one sampler and one step count.")
        return
    plan = inv.measure_plan(samplers, ladder, images, guided, (sampler, steps) if scale_sweep else None, SCALES)
    fits = job_estimate(lambda: plan.evaluations() * seconds_per_image(model, images), "measuring")
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Measure", type="primary", key="inv-px-measure", disabled=not fits)
    b2.button("Stop", key="inv-px-stop", help="Keeps the round trips measured so far.")
    progress, results = st.empty(), st.empty()  # the results' place replaces the hint at once
    end = min(first + images, len(state.held_out().labels))
    key = state.MeasureKey(
        name, first, end, tuple(sorted(samplers)), plan.ladder, guided, sampler, steps, bool(scale_sweep)
    )
    if clicked:
        results.caption("Each round trip's error appears here as soon as it is measured.")
        throttle = Throttle(1.0)

        def redraw(found: state.Measurement) -> None:
            if throttle.ready():
                with results.container():
                    _show(found, live=f"-live-{found.tally.done}")

        run_job("inversion measure", _run, key, plan, model, progress, redraw)
    with results.container():
        found = state.measured(key)
        if found is None:
            st.info(
                f"Press **Measure**: digits #{first} to #{end - 1} (starting at digit B), every sampler and step "
                "count you chose, up and back."
            )
            return
        if stopped := found.tally.stopped(
            "round trips", "any round trip was measured", "Measure again for all of them"
        ):
            st.warning(stopped)
        if found.rows:
            _show(found)


def _show(found: state.Measurement, live: str = "") -> None:
    """The error against the steps (and the scale) and the table of the rows kept; `live`: a suffix for the
    element keys of a redraw while the measurement runs."""
    by_steps, by_scale = found.plan.split(found.rows)
    left, right = st.columns(2)
    if by_steps:
        left.plotly_chart(figures.error_figure(by_steps), key=f"inv-px-m-steps-fig{live}")
    if by_scale:
        right.plotly_chart(figures.scale_figure(by_scale), key=f"inv-px-m-scale-fig{live}")
    st.dataframe(
        pd.DataFrame(figures.error_rows(found.rows)), hide_index=True, width="stretch", key=f"inv-px-m-table{live}"
    )
    if any(math.isnan(r.scale) for r in found.rows):
        st.caption(f"Scale w {figures.NO_SCALE}: the digits ran without a class, so no guidance scale applies.")
