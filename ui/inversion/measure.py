"""The digits tab's error measurement: held-out digits (from digit B on) round-tripped at every sampler and step
count chosen, and (a class bound in) at every guidance scale at the page's sampler and steps. The plan is
core/labs/inversion.MeasurePlan; its rows are kept as they finish, so a Stop keeps them."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.diffusion.inversion import INVERTIBLE
from core.diffusion.samplers import SAMPLERS
from core.labs import inversion as inv
from core.labs.guidance import SCALES
from core.labs.samplers import ImageModel, seconds_per_image
from ui.common.live import job_estimate
from ui.common.widgets import attempt
from ui.inversion import figures, state
from ui.inversion.shared import LADDER_SAMPLERS

STEP_CHOICES = (2, 5, 10, 20, 50, 100, 200)


def _run(key: state.MeasureKey, plan: inv.MeasurePlan, model: ImageModel, progress) -> None:
    """Digits #first to #end - 1 through the plan, with the class of each bound in when the plan is guided."""
    x0 = torch.stack([state.data_digit(i)[0] for i in range(key.first, key.end)])
    labels = torch.from_numpy(state.held_out().labels[key.first : key.end].copy()) if plan.guided else None
    rows = inv.measure(
        plan,
        lambda w: inv.image_denoiser(model, labels, w, batch=len(x0)),
        x0,
        lambda k: model.schedule.capped_sigmas(k).float(),
    )
    state.measure(key, plan, rows, progress)


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
    progress = st.empty()
    end = min(first + images, len(state.held_out().labels))
    key = state.MeasureKey(
        name, first, end, tuple(sorted(samplers)), plan.ladder, guided, sampler, steps, bool(scale_sweep)
    )
    if clicked:
        attempt(_run, key, plan, model, progress)
    found = state.measured(key)
    if not found or not found.rows:
        st.info(
            f"Press **Measure**: digits #{first} to #{end - 1} (starting at digit B), every sampler and step count "
            "you chose, up and back."
        )
        return
    if len(found.rows) < found.plan.total:
        st.warning(f"Stopped after {len(found.rows)} of {found.plan.total} round trips; Measure again for all of them.")
    by_steps, by_scale = found.plan.split(found.rows)
    left, right = st.columns(2)
    left.plotly_chart(figures.error_figure(by_steps), key="inv-px-m-steps-fig")
    if by_scale:
        right.plotly_chart(figures.scale_figure(by_scale), key="inv-px-m-scale-fig")
    table = figures.error_rows(by_steps) + figures.error_rows(by_scale, "scale")
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", key="inv-px-m-table")
