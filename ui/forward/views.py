"""The Forward process page's read-outs: the numbers of one noise level and the schedule's formulas."""

from __future__ import annotations

import streamlit as st

from core.diffusion.schedules import SCHEDULE_KINDS, NoiseSchedule


def show_noise_numbers(container, signal: float, noise: float) -> None:
    """Signal and noise scales (x_t = a x_0 + b eps), SNR and the VE noise level at one step."""
    container.metric("a (signal scale)", f"{signal:.4f}")
    container.metric("b (noise scale)", f"{noise:.4f}")
    container.metric("SNR = a²/b²", f"{(signal / noise) ** 2:.3g}")
    container.metric("σ = b/a (VE noise level)", f"{noise / signal:.3g}")


def show_schedule_maths(schedule: NoiseSchedule) -> None:
    """The forward process, the chosen schedule's formula and the VE form every sampler uses."""
    if schedule.path == "flow":
        st.latex(r"x_t = (1-t)\,x_0 + t\,\epsilon,\quad t\in(0, 1),\quad v = \frac{dx_t}{dt} = \epsilon - x_0")
        st.latex(r"\textstyle " + SCHEDULE_KINDS[schedule.name].formula)
        st.markdown(
            r"The straight path of flow matching and rectified flow; here $t = (i + 1) / (T + 1)$ at step $i$, "
            rf"shifted by $s = {schedule.shift:g}$. In the variance-exploding form every sampler uses, "
            r"$x = x_t / (1 - t) = x_0 + \sigma\,\epsilon$ with $\sigma = t / (1 - t)$: the same noisy data as "
            r"a VP path at that $\sigma$, scaled differently, so one model's paths can be read on the other's grid."
        )
        return
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
