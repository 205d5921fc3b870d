"""The Forward process page's read-outs: the numbers of one noise level and the schedule's formulas."""

from __future__ import annotations

import streamlit as st

from core.diffusion.schedules import SCHEDULE_KINDS, NoiseSchedule


def show_noise_numbers(container, alpha_bar: float) -> None:
    """Signal and noise scales, SNR and the VE noise level at one step."""
    container.metric("√ᾱ (signal scale)", f"{alpha_bar**0.5:.4f}")
    container.metric("√(1−ᾱ) (noise scale)", f"{(1 - alpha_bar) ** 0.5:.4f}")
    container.metric("SNR", f"{alpha_bar / (1 - alpha_bar):.3g}")
    container.metric("σ (VE noise level)", f"{((1 - alpha_bar) / alpha_bar) ** 0.5:.3g}")


def show_schedule_maths(schedule: NoiseSchedule) -> None:
    """The forward process, the chosen schedule's formula and the VE form every sampler uses."""
    st.latex(
        r"x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad \epsilon\sim\mathcal N(0, I),\quad "
        r"\bar\alpha_t = \prod_{s\le t}(1-\beta_s)"
    )
    st.latex(r"\textstyle " + SCHEDULE_KINDS[schedule.name].formula)
    st.markdown(
        r"Equivalently, in the variance-exploding form every sampler in this atlas uses, "
        r"$x = x_t/\sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\epsilon$ "
        r"with $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$."
    )
