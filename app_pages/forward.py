"""Forward process: an image noised under any schedule, the schedule's curves, and how the model sees t."""

import numpy as np
import streamlit as st
import torch

from core.data.images import enlarge, to_uint8
from core.diffusion.forward import forward_trajectory, parse_timesteps
from core.diffusion.schedules import SCHEDULE_KINDS, make_schedule
from ui.common.widgets import attempt, follow_range, schedule_picker, typed_grid
from ui.forward.figures import pixel_histogram, sampling_grids_figure, schedule_curves, timestep_embedding_heatmap
from ui.forward.image_picker import pick_image
from ui.forward.views import show_noise_numbers, show_schedule_maths

st.title("Forward process")
st.markdown(
    "The forward process destroys an image a little at each step: "
    r"$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I\big)$, "
    "so by $t = T$ nothing but Gaussian noise is left. The schedule decides how fast."
)

picked_col, schedule_col = st.columns(2, gap="large")
with picked_col:
    picked = pick_image("fwd")
with schedule_col:
    schedule = attempt(schedule_picker("fwd").build)
    if schedule is None:  # a beta range the schedule cannot take (said above)
        st.stop()
    others = st.multiselect(
        "Compare with (up to 2)",
        [k for k in SCHEDULE_KINDS if k != schedule.name],
        max_selections=2,
        format_func=lambda n: SCHEDULE_KINDS[n].title,
        key="fwd-compare",
    )
    noise = st.radio(
        "Noise along the row",
        ["chain", "shared"],
        horizontal=True,
        format_func={"chain": "one Markov chain", "shared": "one ε for every t"}.get,
        help="A chain adds fresh noise between the shown steps (the real process); one ε shows the same noise "
        "image fading in.",
        key="fwd-noise",
    )
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="fwd-seed")

T = schedule.num_steps
if picked is not None:
    x0, caption = picked
    st.subheader("x_t along the way")
    frames_col, custom_col = st.columns([1, 2])
    frames = frames_col.slider("Frames", 4, 12, 8, key="fwd-frames")
    custom = custom_col.text_input(
        "Or your own t values (comma-separated)", "", key="fwd-ts", placeholder="0, 50, 200, 999", max_chars=128
    )
    ts = np.unique(np.linspace(0, T - 1, frames).round().astype(int)).tolist()
    if custom.strip():
        ts = attempt(parse_timesteps, custom, T) or ts
    traj = forward_trajectory(x0, schedule, ts, generator=torch.Generator().manual_seed(int(seed)), noise=noise)
    images = [enlarge(img) for img in to_uint8(torch.cat([x0[None], traj]))]
    st.image(images, caption=["x₀"] + [f"t = {t}" for t in ts], width=min(110, 880 // len(images)))
    st.caption(caption)

    st.subheader("One step up close")
    t = follow_range(st, "slider", "t", 0, T - 1, T // 4, key="fwd-t", because=f"T = {T}")
    x_t = forward_trajectory(x0, schedule, [t], generator=torch.Generator().manual_seed(int(seed)), noise="shared")[0]
    signal, noise = (float(v) for v in schedule.signal_and_noise(schedule.sigmas[t]))
    img_col, hist_col, num_col = st.columns([1, 2, 1])
    img_col.image(enlarge(to_uint8(x_t[None])[0], 192), caption=f"x_t at t = {t}", width=192)
    hist_col.plotly_chart(pixel_histogram(x_t, t, signal), width="stretch")
    show_noise_numbers(num_col, signal, noise)
else:
    t = T // 4

st.subheader("Schedules")
compared = [(SCHEDULE_KINDS[schedule.name].title, schedule)]
compared += [(SCHEDULE_KINDS[k].title + " (defaults)", make_schedule(k, T)) for k in others]
st.plotly_chart(schedule_curves(compared, t_marker=t), width="stretch")
show_schedule_maths(schedule)

st.subheader("Where samplers put their steps")
a, b = st.columns(2)
n = follow_range(a, "slider", "Sampling steps", 2, min(100, T), 20, key="fwd-grid-steps", because=f"T = {T}")
rho = b.slider("Karras ρ", 1.0, 10.0, 7.0, 0.5, key="fwd-rho", help="7 in EDM; 1 is even in σ.")
typed = attempt(typed_grid, st, "fwd-typed", schedule.sigma_max)
st.plotly_chart(sampling_grids_figure(schedule, n, rho, typed), width="stretch")
st.caption(
    "The noise levels a sampler visits with n steps: the schedule's own timesteps (diffusers' spacings), the "
    "continuous time t evenly spaced, even steps in log-SNR (DPM-Solver's), and the Karras et al. (EDM) grid, "
    "which spends more steps at low noise; each runs between the schedule's smallest and largest σ. Middle: the "
    "same grids as log-SNR = −2 log σ. Right: where their points fall on the schedule's σ(t). The Samplers page "
    "runs any of them, a typed grid too; the Ground truth page measures them and fits grids to a model."
)

st.subheader("How the model sees t")
st.markdown(
    "A UNet does not get t as a number: it gets sinusoidal features of t (the embedding below, computed by "
    "diffusers' own `get_timestep_embedding`), which an MLP turns into a shift and scale for every block."
)
st.plotly_chart(timestep_embedding_heatmap(T), width="stretch")
