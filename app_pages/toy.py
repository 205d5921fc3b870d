"""Toy 2-D/3-D diffusion lab: pick or draw a point cloud, train a small model, watch the points travel."""

import streamlit as st

from core.labs.toy import training_seconds
from ui.common.charts import loss_figure
from ui.common.clouds import MAX_SHOWN, field_figure
from ui.common.live import job_estimate
from ui.common.widgets import attempt, run_job
from ui.toy import state
from ui.toy.controls import TARGETS, TrainingButtons, field_settings, sampler_settings, train_settings
from ui.toy.data import data_picker
from ui.toy.few_step import few_step_section
from ui.toy.figures import cloud_figure, tries_figure
from ui.toy.objectives import objectives_section
from ui.toy.views import show_drift_maths, show_samples

st.title("Toy diffusion lab")
st.markdown(
    "Build intuition on clouds of points: choose or draw a data set, train a small denoiser in seconds, "
    "then watch thousands of points travel from noise to the data, and the field that moves them."
)

# ---- 1. Data ---------------------------------------------------------------------------------------------
st.subheader("1 · Data")
cloud = attempt(data_picker)
if cloud is None:  # waiting for a drawing or an upload, or what was given is unusable (said above)
    st.stop()
shown = f" ({MAX_SHOWN:,} drawn)" if len(cloud.points) > MAX_SHOWN else ""
st.plotly_chart(cloud_figure(cloud.points, f"{cloud.title}: {len(cloud.points):,} points{shown}"), key="toy-data-fig")
st.caption(
    "Shown in the data's own units. The model trains on standardised data: centred, and divided by one "
    "common scale (the RMS of the per-axis standard deviations), so shapes and directions stay as they are."
)

# ---- 2. Train --------------------------------------------------------------------------------------------
st.subheader("2 · Train")
settings, steps = train_settings()
run = state.current_run()
fits = job_estimate(lambda: training_seconds(settings, cloud.dim, steps))  # a sentence, before anything starts
buttons = TrainingButtons(ready=run is not None, allowed=fits)
st.caption(
    "Training runs in your session only. Stop, or any other click, pauses it and keeps the model trained so "
    "far; Continue training adds the steps above with the same optimizer."
)
progress, chart = st.empty(), st.empty()
if buttons.train or (buttons.resume and run is not None):
    run = attempt(state.new_run, cloud, settings) if buttons.train else run
    if run is not None:
        run_job("toy training", state.train_live, run, steps, progress, chart)
if run is None:
    buttons.info.info("Train a model to sample from it (or compare objectives in section 5).")
    objectives_section(cloud, settings, steps)
    few_step_section(cloud, settings, None)
    st.stop()
buttons.ready_now()
state.show_stopped(run, progress)  # replaces the last (throttled) line drawn while it trained
if run.trainer.metrics:
    chart.plotly_chart(loss_figure(run.trainer.metrics), key="toy-loss")
stopped = f" (stopped before {run.target_step:,})" if run.step < run.target_step else ""
buttons.info.caption(
    f"**{run.name}** on {run.data_title}: {run.step:,} steps{stopped} in {run.trainer.seconds:.1f} s, "
    f"{run.settings.width}x{run.settings.depth} MLP, {run.settings.schedule} T={run.settings.T}, "
    f"predicts {TARGETS[run.settings.prediction_type]}."
)
data_cloud = cloud  # section 5 trains on the data chosen above
if run.data_key != cloud.key:
    st.warning(f"The data changed: the model below learnt {run.data_title}. Train again to learn the new data.")
cloud = run.cloud  # sampling and fields compare the model with the data it learnt


# ---- 3. Sample -------------------------------------------------------------------------------------------
@st.fragment
def sample_section() -> None:
    st.subheader("3 · Sample")
    choice = sampler_settings(run.schedule.num_steps)
    clicked = st.button("Sample", type="primary", key="toy-sample")
    if (clicked or state.wants_autosample()) and attempt(state.sample, run, choice) is None:
        return
    if state.last_sample() is None:
        return
    last = state.last_sample()
    show_samples(last, run, choice.show_x0)
    st.markdown("**Samplers tried** (grows as you sample)")
    rows = state.table_rows()
    st.dataframe(rows, hide_index=True, width="stretch", key="toy-table")
    if len(rows) > 1:
        st.plotly_chart(tries_figure(rows, last.bands), key="toy-tries")
    st.button("Clear table", key="toy-clear", on_click=state.clear_table)


# ---- 4. Drift --------------------------------------------------------------------------------------------
@st.fragment
def drift_section() -> None:
    st.subheader("4 · Drift field")
    has_exact = run.cloud.mixture is not None
    side = st.columns([3, 2]) if not has_exact else None
    with side[1] if side else st.container():
        show_drift_maths()
        choice = field_settings(run.dim, compact=side is not None)
    found = attempt(state.drift_fields, run, choice)
    if found is None:
        return
    learned, exact = found
    panels = [("Learned", learned)]
    if exact is not None:
        panels += [("Exact (mixture)", exact), ("Learned − exact", learned - exact)]
    with side[0] if side else st.container():
        fig = field_figure(panels, choice.kind, cloud.points, height=520 if has_exact else 600)
        st.plotly_chart(fig, key="toy-field")
        st.caption(
            "Arrow length is proportional to the field, rescaled at each frame with one scale for all panels "
            "(the slider shows the largest value). The grid spans the data's extent."
        )


sample_section()
drift_section()
objectives_section(data_cloud, settings, steps)
few_step_section(data_cloud, settings, run)
