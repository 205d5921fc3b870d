"""Latent MNIST: digits through a VAE with a 2-D latent, the densities of that plane, and diffusion in it."""

import numpy as np
import streamlit as st

from core.data.images import enlarge
from core.labs.latent import decode_points, manifold_image
from ui.common.widgets import attempt
from ui.latent import state
from ui.latent.controls import (
    density_settings,
    manifold_settings,
    sampling_settings,
)
from ui.latent.figures import (
    density_map,
    density_surface,
    loss_parts_figure,
    marked_manifold,
    robust_ranges,
    snapshot_animation,
)
from ui.latent.models import pick_latent_model, pick_vae
from ui.latent.sampling import generate, last_result, show_result

st.title("Latent MNIST")
st.markdown(
    "Diffusion in a space small enough to see. A VAE squeezes each 28×28 digit into a point of a plane; "
    "the plane's densities show where each digit lives; a small diffusion model then learns to draw points "
    "there, and the VAE's decoder turns them back into digits."
)

# ---- 1. VAE ----------------------------------------------------------------------------------------------
st.subheader("1 · The VAE and its latent plane")
vae = pick_vae()
if vae is None:
    st.stop()
points, labels = state.latents(vae), state.digits().labels
left, right = st.columns([3, 2])
if len(vae.snapshots.steps) > 1:
    replay = snapshot_animation(np.array(vae.snapshots.steps), vae.snapshot_means(), vae.snapshots.labels.numpy())
    left.plotly_chart(replay, key="vae-replay")
    left.caption("Press ▶ to watch the plane organise: each dot is one digit's latent mean, at each saved step.")
if vae.records:
    right.plotly_chart(loss_parts_figure(vae.records), key="vae-loss")
right.markdown(
    f"**{vae.name}**{vae.stopped_note()}: {len(points):,} digits encoded. The loss is the negative ELBO: how "
    "well the decoder rebuilds a digit from its point, plus the KL term that keeps the points near N(0, I)."
)


# ---- 2. Manifold -----------------------------------------------------------------------------------------
@st.fragment
def manifold_section() -> None:
    st.subheader("2 · What each point decodes to")
    n, spacing = manifold_settings()
    left, right = st.columns([3, 2])
    xs, ys = state.manifold_grid(points, n, spacing)
    with right:
        (lo_x, hi_x), (lo_y, hi_y) = robust_ranges(points)
        a, b = st.columns(2)
        z1 = a.slider("z₁", float(lo_x), float(hi_x), 0.0 if lo_x < 0 < hi_x else float(lo_x), key="pick-z1")
        z2 = b.slider("z₂", float(lo_y), float(hi_y), 0.0 if lo_y < 0 < hi_y else float(lo_y), key="pick-z2")
        st.image(enlarge(decode_points(vae.vae, np.array([[z1, z2]]))[0], 224), caption=f"z = ({z1:.2f}, {z2:.2f})")
    left.image(marked_manifold(manifold_image(vae.vae, xs, ys), xs, ys, (z1, z2)), width="stretch")
    left.caption(
        f"z₁ from {xs[0]:.2f} (left) to {xs[-1]:.2f}, z₂ from {ys[-1]:.2f} (top) to {ys[0]:.2f}; the red ring is "
        "the point picked on the right (at the edge when it lies beyond the grid)."
    )


# ---- 3. Density ------------------------------------------------------------------------------------------
@st.fragment
def density_section() -> None:
    st.subheader("3 · Where each digit lives: kernel density estimates")
    choice = density_settings()
    grid = attempt(state.densities, points, labels, choice.bandwidth, choice.size)
    if grid is None:
        return
    left, right = st.columns(2)
    right.plotly_chart(density_map(grid, points, labels, choice.classes), key="kde-map")
    if choice.surfaces:
        left.plotly_chart(density_surface(grid, choice.classes, choice.overall), key="kde-surface")
    else:
        left.info("Turn on **3-D surfaces** above to see each class's density as a hill you can turn.")
    st.caption(
        f"One Gaussian KDE per class (its own points, its own bandwidth; overall factor {grid.factor:.3f}), on a "
        f"{choice.size}×{choice.size} grid: the density of the chosen classes with their digits, and (3-D) each "
        "class's density as a surface in its colour."
    )


# ---- 4. Latent diffusion ---------------------------------------------------------------------------------
@st.fragment
def diffusion_section(model) -> None:
    choice = sampling_settings()
    grid = state.densities(points, labels, "scott", 80)
    if (
        st.button("Generate", type="primary", key="ldm-generate")
        and attempt(generate, model, vae.vae, choice, grid, "ldm") is None
    ):
        return
    found = last_result()
    if found is not None:
        show_result(*found, grid, choice)


manifold_section()
density_section()
st.subheader("4 · Diffusion in the latent plane")
# Picked (and trained) in the page's own run, not in the fragment: a click inside a running fragment waits
# for the run to end, so the training's Stop would stop nothing there.
latent_model = pick_latent_model(vae)
if latent_model is not None:
    diffusion_section(latent_model)
