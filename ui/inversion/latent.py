"""The Inversion page's latent tab: held-out digits encoded by the bundled VAE run up the bundled latent model's
ODE and back, with the round-trip error against the steps and (a class bound in) against the guidance scale. A
fragment: its widgets rerun only the tab, and its results are quick."""

from __future__ import annotations

import streamlit as st
import torch

from core.diffusion.samplers import SAMPLERS
from core.labs import inversion as inv
from core.labs.guidance.sweep import SCALES
from ui.common import cache
from ui.common.widgets import attempt
from ui.inversion import figures, state
from ui.inversion.shared import LADDER_SAMPLERS, errors_line, moments_table, sampler_box

LADDER_POINTS = 100  # the curves need fewer points than the picture


@st.fragment
def latent_tab() -> None:
    st.markdown(
        "Held-out digits encoded by the bundled VAE (mnist-vae-2d) are points of a plane; the bundled latent "
        "model (mnist-latent-cond) runs them up to noise and back. With each digit's class bound in, the "
        "guidance scale changes the ODE itself, so the same scale must be used both ways."
    )
    setup = attempt(cache.latent_plane)
    if setup is None:
        return
    a, b, c, d, e = st.columns([1, 1.2, 1, 1.2, 1.4])
    n = a.slider("Digits", 20, len(setup.labels), 300, 20, key="inv-lat-n")
    name = sampler_box("inv-lat-sampler", b)
    steps = c.slider("Steps", 2, 100, 20, key="inv-lat-steps")
    cond = d.toggle("Each digit's class", value=True, key="inv-lat-cond", help="Off: the unconditional model.")
    scale = e.select_slider("Guidance scale w", SCALES, value=1.0, key="inv-lat-scale", disabled=not cond)
    n, steps, scale, model = int(n), int(steps), float(scale), setup.model
    labels = torch.from_numpy(setup.labels[:n].copy())
    x0 = setup.x0[:n]
    sigmas = model.schedule.capped_sigmas(steps).float()
    result = attempt(
        state.LATENT_TRIP.make,
        state.LatentTripKey(n, name, steps, cond, scale),
        lambda: inv.invert_paths(name, model.conditioned(labels if cond else None, n, scale), x0, sigmas),
    )
    if result is None:
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.paths_figure(result, setup.labels[:n], model.to_latent), key="inv-lat-paths")
    with right:
        errors_line(result, "standardised latent units")
        eps = result.eps.numpy()
        st.plotly_chart(figures.noise_histogram({"z1": eps[:, 0], "z2": eps[:, 1]}), key="inv-lat-hist")
        moments_table(eps, ["z1", "z2"], "inv-lat-moments")
    m = min(n, LADDER_POINTS)

    def at(w: float):
        return model.conditioned(labels[:m] if cond else None, m, w)

    def ladder() -> list[inv.ErrorRow]:
        grid = lambda k: model.schedule.capped_sigmas(k).float()  # noqa: E731
        return list(inv.error_vs_steps(at(scale), x0[:m], grid, LADDER_SAMPLERS, inv.STEP_LADDER))

    rows = state.LATENT_LADDER.make(state.LatentLadderKey(m, cond, scale), ladder)
    left, right = st.columns(2)
    left.markdown(f"**Against the steps** (the first {m} digits; dotted: after the last step to 0)")
    left.plotly_chart(figures.error_figure(rows), key="inv-lat-errors")
    if cond:
        by_scale = state.LATENT_SCALES.make(
            state.LatentScaleKey(m, name, steps), lambda: list(inv.error_vs_scale(at, x0[:m], sigmas, name, SCALES))
        )
        right.markdown(f"**Against the guidance scale** ({SAMPLERS[name].title}, {len(sigmas) - 1} steps)")
        right.plotly_chart(figures.scale_figure(by_scale), key="inv-lat-scales")
        right.caption("Guidance makes the field steeper near the classes' modes, and the solver's error grows.")
