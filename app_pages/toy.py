"""Toy 2-D/3-D diffusion lab: pick or draw a point cloud, train a small model, watch the points travel."""

import streamlit as st

from core.errors import BadInputError
from core.samplers import SAMPLERS
from core.toy_lab import fields
from core.toy_sampling import distances, escaped_share, run_sampler
from ui import toy_state as state
from ui.toy_controls import TARGETS, field_settings, sampler_settings, train_settings
from ui.toy_data import data_picker
from ui.toy_figures import MAX_SHOWN, cloud_figure, field_figure, loss_figure, samples_figure, trajectory_figure

st.title("Toy diffusion lab")
st.markdown(
    "Build intuition on clouds of points: choose or draw a data set, train a small denoiser in seconds, "
    "then watch thousands of points travel from noise to the data, and the field that moves them."
)

# ---- 1. Data ---------------------------------------------------------------------------------------------
st.subheader("1 · Data")
try:
    cloud = data_picker()
except BadInputError as err:
    st.error(str(err))
    st.stop()
if cloud is None:
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
b1, b2, b3, info = st.columns([1, 1.3, 1, 3])
train = b1.button("Train", type="primary", key="toy-train", help="A new model from scratch, with these settings.")
resume = b2.button("Continue training", key="toy-continue", disabled=run is None, help="More steps, same optimizer.")
b3.button("Stop", key="toy-stop", help="Keeps the model trained so far.")
st.caption(
    "Training runs in your session only. Stop, or any other click, pauses it and keeps the model trained so "
    "far; Continue training adds the steps above with the same optimizer."
)
progress, chart = st.empty(), st.empty()
try:
    if train or (resume and run is not None):
        run = state.new_run(cloud, settings) if train else run
        st.session_state["toy_autosample"] = True  # sample the model when training ends or is stopped
        state.train_live(run, steps, progress, chart)
except BadInputError as err:
    st.error(str(err))
if run is None:
    info.info("Train a model to sample from it.")
    st.stop()
if run.trainer.metrics:
    chart.plotly_chart(loss_figure(run.trainer.metrics), key="toy-loss")
stopped = f" (stopped before {run.target_step:,})" if run.step < run.target_step else ""
info.caption(
    f"**{run.record['name']}** on {run.data_title}: {run.step:,} steps{stopped} in {run.trainer.seconds:.1f} s, "
    f"{run.settings.width}x{run.settings.depth} MLP, {run.settings.schedule} T={run.settings.T}, "
    f"predicts {TARGETS[run.settings.prediction_type]}."
)
if run.data_key != cloud.key:
    st.warning(f"The data changed: the model below learnt {run.data_title}. Train again to learn the new data.")
cloud = run.cloud  # sampling and fields compare the model with the data it learnt


# ---- 3. Sample -------------------------------------------------------------------------------------------
@st.fragment
def sample_section() -> None:
    st.subheader("3 · Sample")
    choice = sampler_settings(run.schedule.num_steps)
    clicked = st.button("Sample", type="primary", key="toy-sample")
    if clicked or st.session_state.pop("toy_autosample", False):
        try:
            result = run_sampler(run, choice.name, choice.steps, choice.n, choice.seed, choice.spacing,
                                 choice.path_points, clip=choice.clip, **choice.options)  # fmt: skip
        except BadInputError as err:
            st.error(str(err))
            return
        dist = distances(result, run, choice.seed)
        st.session_state[state.RESULT] = (result, dist)
        state.add_row(result, dist, run)
    if state.RESULT not in st.session_state:
        return
    result, dist = st.session_state[state.RESULT]
    escaped = escaped_share(result, run)
    if escaped > 0.01:
        st.warning(
            f"{escaped:.0%} of the samples left the data's range. Typical cause: predicting ε "
            f"where the noise is huge (the first step starts at σ = {float(result.sigmas[0]):.3g}; ε errors are "
            "multiplied by σ). Try predicting v, fewer or later steps (leading spacing), or clip x₀."
        )
    left, right = st.columns([3, 2])
    with left:
        path_x0 = result.path_x0 if choice.show_x0 else None
        fig = trajectory_figure(result.path, result.sigmas, result.times, cloud.points, path_x0)
        st.plotly_chart(fig, key="toy-trajectory")
        st.caption(
            "Press ▶ to play. States are shown as $y = x / \\sqrt{1 + \\sigma^2}$ (the VP form of the sampler's "
            "$x = x_0 + \\sigma\\epsilon$), so the cloud starts as unit-scale noise and ends on the data."
        )
    with right:
        st.plotly_chart(samples_figure(result.samples, cloud.points, height=420), key="toy-samples")
        m1, m2, m3 = st.columns(3)
        m1.metric("Sliced W₂", f"{dist['swd']:.3f}", help=f"Two fresh data sets: {dist['swd_floor']:.3f}")
        m2.metric("MMD", f"{dist['mmd']:.3f}", help=f"Two fresh data sets: {dist['mmd_floor']:.3f}")
        m3.metric("Time", f"{result.seconds:.2f} s", help=f"{result.nfe} denoiser evaluations")
        st.caption(
            f"{SAMPLERS[result.label['sampler']].title}, {result.label['steps']} steps. Distances to fresh data in "
            f"standardised units; two fresh data sets of the same size are {dist['swd_floor']:.3f} / "
            f"{dist['mmd_floor']:.3f} apart."
        )
    st.markdown("**Samplers tried** (grows as you sample)")
    st.dataframe(state.table_rows(), hide_index=True, width="stretch", key="toy-table")
    st.button("Clear table", key="toy-clear", on_click=state.clear_table)


# ---- 4. Drift --------------------------------------------------------------------------------------------
@st.fragment
def drift_section() -> None:
    st.subheader("4 · Drift field")
    has_exact = run.cloud.mixture is not None
    side = st.columns([3, 2]) if not has_exact else None
    with side[1] if side else st.container():
        st.latex(r"v(y, u) = -\frac{dy}{du} = \tfrac12\,\beta(u)\,\big(y + \nabla_y \log p_u(y)\big)")
        st.latex(
            r"\nabla_y \log p_u(y) = \frac{\sqrt{\bar\alpha}\,D(y/\sqrt{\bar\alpha},\,\sigma) - y}{1 - \bar\alpha}"
        )
        st.latex(r"\beta(u) = -\frac{d\log\bar\alpha}{du},\qquad \bar\alpha = \frac{1}{1 + \sigma^2}")
        st.caption(
            "The probability-flow velocity: how a point $y$ (VP coordinates, data units) moves per unit of "
            "normalised time $u = t/(T-1)$ as the sampler runs from noise ($u = 1$) to data ($u = 0$). The "
            "score points to where the noisy data are denser. $D$ is the model's estimate of $x_0$; for a "
            "Gaussian mixture the exact $D$ is known, and drawn beside the learned one."
        )
        choice = field_settings(run.dim, compact=side is not None)
    memo = (run.record["name"], run.step, tuple(choice.times.tolist()), choice.grid)
    cached = st.session_state.get(state.FIELD)
    if cached is None or cached[0] != memo:
        try:
            learned, exact = fields(run, choice.times, choice.grid)
        except BadInputError as err:
            st.error(str(err))
            return
        cached = (memo, learned, exact)
        st.session_state[state.FIELD] = cached
    _, learned, exact = cached
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
