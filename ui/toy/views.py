"""The toy lab's result displays: a sample run (its animated paths, the samples, their distances to fresh
data) and the drift field's equations."""

from __future__ import annotations

import streamlit as st

from core.diffusion.samplers import SAMPLERS
from core.labs.toy import ToyRun, escaped_share
from ui.toy.figures import samples_figure, trajectory_figure
from ui.toy.state import Sampled


def show_samples(found: Sampled, run: ToyRun, show_x0: bool) -> None:
    """The animated paths beside the finished samples and their distances to fresh data."""
    result, dist, bands = found
    escaped = escaped_share(result, run)
    if escaped > 0.01:
        st.warning(
            f"{escaped:.0%} of the samples left the data's range. Typical cause: predicting ε "
            f"where the noise is huge (the first step starts at σ = {float(result.sigmas[0]):.3g}; ε errors are "
            "multiplied by σ). Try predicting v, fewer or later steps (leading spacing), or clip x₀."
        )
    left, right = st.columns([3, 2])
    with left:
        path_x0 = result.path_x0 if show_x0 else None
        fig = trajectory_figure(result.path, result.sigmas, result.times, run.cloud.points, path_x0)
        st.plotly_chart(fig, key="toy-trajectory")
        st.caption(
            "Press ▶ to play. States are shown as $y = x / \\sqrt{1 + \\sigma^2}$ (the VP form of the sampler's "
            "$x = x_0 + \\sigma\\epsilon$), so the cloud starts as unit-scale noise and ends on the data."
        )
    with right:
        st.plotly_chart(samples_figure(result.samples, run.cloud.points, height=420), key="toy-samples")
        m1, m2, m3 = st.columns(3)
        m1.metric("Sliced W₂", f"{dist['swd']:.3f}", help=f"Two fresh data sets: {bands['swd'].span()}")
        m2.metric("MMD", f"{dist['mmd']:.3f}", help=f"Two fresh data sets: {bands['mmd'].span()}")
        m3.metric("Time", f"{result.seconds:.2f} s", help=f"{result.nfe} denoiser evaluations")
        st.caption(
            f"{SAMPLERS[result.label['sampler']].title}, {result.label['steps']} steps. Distances to as many fresh "
            f"data points, in standardised units. Data itself reads {bands['swd'].span()} (SW₂) and "
            f"{bands['mmd'].span()} (MMD): {bands['swd'].describe()}."
        )


def show_drift_maths() -> None:
    """The probability-flow velocity and the score as the drift panels draw them."""
    st.latex(r"v(y, u) = -\frac{dy}{du} = \tfrac12\,\beta(u)\,\big(y + \nabla_y \log p_u(y)\big)")
    st.latex(r"\nabla_y \log p_u(y) = \frac{\sqrt{\bar\alpha}\,D(y/\sqrt{\bar\alpha},\,\sigma) - y}{1 - \bar\alpha}")
    st.latex(r"\beta(u) = -\frac{d\log\bar\alpha}{du},\qquad \bar\alpha = \frac{1}{1 + \sigma^2}")
    st.caption(
        "The probability-flow velocity: how a point $y$ (VP coordinates, data units) moves per unit of "
        "normalised time $u = t/(T-1)$ as the sampler runs from noise ($u = 1$) to data ($u = 0$). The "
        "score points to where the noisy data are denser. $D$ is the model's estimate of $x_0$; for a "
        "Gaussian mixture the exact $D$ is known, and drawn beside the learned one."
    )
