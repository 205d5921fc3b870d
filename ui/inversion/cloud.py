"""The Inversion page's point-cloud tab: points of a 2-D Gaussian mixture up the ODE and back under the exact
mixture denoiser, and every deterministic sampler's round-trip error against the steps. A fragment: its widgets
rerun only the tab, and its results are quick."""

from __future__ import annotations

import streamlit as st
import torch

from core.diffusion.grids import karras_sigmas
from core.diffusion.inversion import INVERTIBLE
from core.labs import inversion as inv
from ui.common.widgets import attempt
from ui.inversion import figures, state
from ui.inversion.shared import errors_line, moments_table, sampler_box

TOY_SIGMAS = (0.002, 80.0)  # the Karras grid the Ground truth page uses


@st.fragment
def cloud_tab() -> None:
    st.markdown(
        "Points of a 2-D Gaussian mixture, each run **up** the probability-flow ODE to its noise at sigma = 80 "
        "(lines, in VP coordinates x / sqrt(1 + sigma²) so data and noise share one scale) and sampled **back** "
        "on the same grid (rings). The mixture's denoiser is exact, so every bit of error is the solver's: it "
        "shrinks with the steps at each sampler's order (below)."
    )
    sources = state.cloud_sources()
    a, b, c, d, e = st.columns([2.2, 1, 1.2, 1, 0.8])
    source = a.selectbox("Point cloud", list(sources), format_func=sources.get, key="inv-cloud-set")
    n = b.slider("Points", 20, inv.MAX_POINTS, 200, 20, key="inv-cloud-n")
    name = sampler_box("inv-cloud-sampler", c, "euler")
    steps = d.slider("Steps", 2, 100, 8, key="inv-cloud-steps")
    seed = e.number_input("Seed", 0, 2**31 - 1, 0, key="inv-cloud-seed")
    mix = attempt(state.cloud_mixture, source)
    if mix is None:
        return
    x0 = mix.sample(int(n), torch.Generator().manual_seed(int(seed)))[0]
    sigmas = karras_sigmas(int(steps), *TOY_SIGMAS).double()
    cloud = state.CloudKey(source, int(n), int(seed))
    result = attempt(
        state.CLOUD_TRIP.make,
        state.CloudTripKey(cloud, name, int(steps)),
        lambda: inv.invert_paths(name, mix.denoise, x0, sigmas),
    )
    if result is None:
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.paths_figure(result), key="inv-cloud-paths")
    with right:
        errors_line(result, "data units")
        eps = result.eps.numpy()
        st.plotly_chart(figures.noise_histogram({"x": eps[:, 0], "y": eps[:, 1]}), key="inv-cloud-hist")
        moments_table(eps, ["x", "y"], "inv-cloud-moments")
        st.caption("Few steps leave the noise too narrow or skewed: the solver's error, not the data's shape.")
    st.markdown("**Round-trip error against the steps, every deterministic sampler** (same points; DDIM = Euler)")

    def ladder() -> list[inv.ErrorRow]:
        grid = lambda k: karras_sigmas(k, *TOY_SIGMAS).double()  # noqa: E731
        samplers = [s for s in INVERTIBLE if s != "ddim"]
        return list(inv.error_vs_steps(mix.denoise, x0, grid, samplers, inv.TOY_LADDER))

    rows = state.CLOUD_LADDER.make(cloud, ladder)
    st.plotly_chart(figures.error_figure(rows, with_orders=True), key="inv-cloud-errors")
    st.caption(
        "Slopes are fitted over NFE ≥ 8. A round trip cancels the leading error term of a symmetric method, so "
        "second-order samplers often come out steeper than their order; the first steps can overshoot badly."
    )
