"""Widgets that several pages share: schedule and seed pickers, image display helpers."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.grids import upscale_nearest
from core.schedules import SCHEDULE_KINDS, NoiseSchedule, make_schedule


def schedule_picker(
    key: str, default: str = "linear", label: str = "Noise schedule", with_steps: bool = True
) -> NoiseSchedule:
    """Schedule, T and (where the schedule has one) its beta range; returns the built schedule."""
    names = list(SCHEDULE_KINDS)
    kind = st.selectbox(
        label, names, index=names.index(default), format_func=lambda n: SCHEDULE_KINDS[n].title, key=f"{key}-kind"
    )
    spec = SCHEDULE_KINDS[kind]
    steps = st.number_input("T (training steps)", 10, 4000, 1000, step=10, key=f"{key}-T") if with_steps else 1000
    start = end = None
    if spec.beta_start is not None:
        start, end = st.slider(
            "β range",
            1e-5,
            0.05,
            (float(spec.beta_start), float(spec.beta_end)),
            step=1e-5,
            format="%.5f",
            key=f"{key}-betas-{kind}",
        )
    return make_schedule(kind, int(steps), start, end)


def upscale(image: np.ndarray, min_side: int = 128) -> np.ndarray:
    """Enlarge a small uint8 image [H, W, C] so pixels stay crisp on screen; grey comes back as [H, W]."""
    big = upscale_nearest(image, min_side)
    return big[..., 0] if big.shape[-1] == 1 else big
