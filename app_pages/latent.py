"""Latent MNIST: digits through a VAE with a 2-D latent, the densities of that plane, and diffusion in it."""

import numpy as np
import streamlit as st

from core.errors import BadInputError
from core.kde import DensityGrid, kde_grid
from core.latent_space import decode_points, manifold_axes, manifold_image
from ui import latent_state as state
from ui.latent_controls import (
    density_settings,
    latent_train_settings,
    manifold_settings,
    sampling_settings,
    vae_settings,
)
from ui.latent_figures import (
    density_map,
    density_surface,
    final_points_figure,
    loss_parts_figure,
    paths_figure,
    picked_point_figure,
    robust_ranges,
    snapshot_animation,
)
from ui.latent_sampling import generate, readout
from ui.toy_figures import loss_figure
from ui.widgets import upscale

st.title("Latent MNIST")
st.markdown(
    "Diffusion in a space small enough to see. A VAE squeezes each 28×28 digit into a point of a plane; "
    "the plane's densities show where each digit lives; a small diffusion model then learns to draw points "
    "there, and the VAE's decoder turns them back into digits."
)


@st.cache_data(show_spinner="Estimating densities…", max_entries=16)
def densities(points: np.ndarray, labels: np.ndarray, bandwidth: str | float, size: int) -> DensityGrid:
    return kde_grid(points, labels, bandwidth, size)


# ---- 1. VAE ----------------------------------------------------------------------------------------------
st.subheader("1 · The VAE and its latent plane")
source = st.radio(
    "VAE",
    ["bundled", "trained"],
    horizontal=True,
    key="latent-vae-source",
    format_func={"bundled": "Bundled (mnist-vae-2d)", "trained": "Train one here"}.get,
)
if source == "trained":
    config = vae_settings()
    b1, b2, note = st.columns([1, 1, 5])
    clicked = b1.button("Train VAE", type="primary", key="vae-train")
    b2.button("Stop", key="vae-stop", help="Keeps the VAE trained so far.")
    note.caption(f"On the first {len(state.digits().labels):,} training digits ({state.digits().source}).")
    progress, live_left, live_right = st.empty(), *st.columns(2)
    if clicked:
        live = (progress, live_left.empty(), live_right.empty())
        try:
            state.train_vae_live(config, *live)
        except BadInputError as err:
            st.error(str(err))
        else:
            for slot in live:  # the finished VAE is drawn below (replay and loss parts)
                slot.empty()
vae = state.vae_in_use(source)
if vae is None:
    st.info("Set the VAE's training above and press **Train VAE**, or use the bundled VAE.")
    st.stop()
points, labels = state.latents(vae), state.digits().labels
snaps = vae.snapshots
left, right = st.columns([3, 2])
with left:
    if len(snaps.steps) > 1:
        means = np.stack([m.double().numpy() for m in snaps.means])
        st.plotly_chart(snapshot_animation(np.array(snaps.steps), means, snaps.labels.numpy()), key="vae-replay")
        st.caption("Press ▶ to watch the plane organise: each dot is one digit's latent mean, at each saved step.")
with right:
    if vae.records:
        st.plotly_chart(loss_parts_figure(vae.records), key="vae-loss")
    st.markdown(
        f"**{vae.name}**: {len(points):,} digits encoded. The loss is the negative ELBO: how well the decoder "
        "rebuilds a digit from its point, plus the KL term that keeps the points near N(0, I)."
    )


# ---- 2. Manifold -----------------------------------------------------------------------------------------
@st.fragment
def manifold_section() -> None:
    st.subheader("2 · What each point decodes to")
    n, spacing = manifold_settings()
    left, right = st.columns([3, 2])
    extent = tuple(np.array(r) for r in zip(*robust_ranges(points, pad=0.0), strict=True))
    xs, ys = manifold_axes(n, spacing, extent)
    left.image(manifold_image(vae.vae, xs, ys), clamp=True, width="stretch")
    left.caption(f"z₁ from {xs[0]:.2f} (left) to {xs[-1]:.2f}, z₂ from {ys[-1]:.2f} (top) to {ys[0]:.2f}.")
    with right:
        (lo_x, hi_x), (lo_y, hi_y) = robust_ranges(points)
        a, b = st.columns(2)
        z1 = a.slider("z₁", float(lo_x), float(hi_x), 0.0 if lo_x < 0 < hi_x else float(lo_x), key="pick-z1")
        z2 = b.slider("z₂", float(lo_y), float(hi_y), 0.0 if lo_y < 0 < hi_y else float(lo_y), key="pick-z2")
        c1, c2 = st.columns([2, 1])
        c1.plotly_chart(picked_point_figure(points, labels, (z1, z2), height=300), key="pick-fig")
        c2.image(upscale(decode_points(vae.vae, np.array([[z1, z2]]))[0], 140), caption=f"({z1:.2f}, {z2:.2f})")


# ---- 3. Density ------------------------------------------------------------------------------------------
@st.fragment
def density_section() -> None:
    st.subheader("3 · Where each digit lives: kernel density estimates")
    bandwidth, size, classes, overall = density_settings()
    try:
        grid = densities(points, labels, bandwidth, size)
    except BadInputError as err:
        st.error(str(err))
        return
    left, right = st.columns(2)
    left.plotly_chart(density_surface(grid, classes, overall), key="kde-surface")
    right.plotly_chart(density_map(grid, points, labels, classes), key="kde-map")
    st.caption(
        f"One Gaussian KDE per class (its own points, its own bandwidth; overall factor {grid.factor:.3f}), on a "
        f"{size}×{size} grid. Left: each class's density as a surface in its colour; right: the density of the "
        "chosen classes with their digits. Drag the 3-D view to turn it."
    )


# ---- 4. Latent diffusion ---------------------------------------------------------------------------------
@st.fragment
def diffusion_section() -> None:
    st.subheader("4 · Diffusion in the latent plane")
    options = ["bundled", "trained"] if vae.bundled else ["trained"]
    which = st.radio(
        "Latent model",
        options,
        horizontal=True,
        key=f"ldm-source-{vae.bundled}",
        format_func={"bundled": "Bundled (mnist-latent-cond)", "trained": "Train one here"}.get,
    )
    if not vae.bundled:
        st.caption("The bundled latent model learnt the bundled VAE's plane; for this VAE, train one here.")
    model = state.bundled_latent() if which == "bundled" else None
    if which == "trained":
        settings = latent_train_settings()
        clicked = st.button("Train latent model", type="primary", key="ldm-train")
        progress, chart = st.empty(), st.empty()
        try:
            trainer = state.train_latent_live(vae, settings, progress, chart) if clicked else state.latent_trainer(vae)
        except BadInputError as err:
            st.error(str(err))
            return
        if trainer is None:
            st.info("Press **Train latent model**: a class-conditional MLP learns this plane in seconds.")
            return
        chart.plotly_chart(loss_figure(trainer.trainer.metrics), key="ldm-loss")
        st.caption(f"**{trainer.name}**: {trainer.trainer.step:,} steps in {trainer.trainer.seconds:.1f} s.")
        model = trainer.model()
    choice = sampling_settings()
    grid = densities(points, labels, "scott", 80)
    if st.button("Generate", type="primary", key="ldm-generate"):
        try:
            st.session_state[state.RESULT] = generate(model, vae.vae, choice, grid, "ldm")
        except BadInputError as err:
            st.error(str(err))
            return
    result = st.session_state.get(state.RESULT)
    if result is None:
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(paths_figure(grid, result.paths.path.numpy()), key="ldm-paths")
    right.image(result.strips, clamp=True, width="stretch")
    right.caption(
        "A strip per sample, left (noise) to right (finished): the digit its current point decodes to, "
        f"at σ = {', '.join(f'{s:.3g}' for s in result.columns)}."
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(final_points_figure(grid, result.paths.samples.numpy(), result.predicted), key="ldm-final")
    wanted = result.paths.label["class"]
    if wanted is not None:
        right.metric("Read as the requested class", f"{float((result.predicted == wanted).mean()):.0%}")
    right.dataframe(readout(result), hide_index=True, key="ldm-readout")
    lab = result.paths.label
    right.caption(
        f"{lab['sampler']}, {lab['steps']} steps, seed {lab['seed']}, {result.paths.seconds * 1000:.0f} ms. "
        "Labels and confidences from the bundled LeNet classifier."
    )


manifold_section()
density_section()
diffusion_section()
