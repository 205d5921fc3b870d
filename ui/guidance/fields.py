"""The Guidance page's latent-plane tab: the conditional, reference and guided fields of the latent model for
any method (a fragment: quick, and its widgets rerun only the tab)."""

from __future__ import annotations

import streamlit as st
import torch

from core.diffusion.guidance import Guidance
from core.labs.guidance.fields import latent_fields
from core.labs.guidance.sweep import SCALES
from core.labs.latent import latent_diffusion
from ui.common.cache import latent_plane, zoo_model
from ui.common.clouds import field_figure
from ui.common.widgets import attempt
from ui.guidance.controls import CHOICES, INTERVAL_SIGMAS, LAMBDA_CHOICES
from ui.guidance.sweep import GUIDES

FIELD_METHODS = {k: v for k, v in CHOICES.items() if k != "interval"}  # the interval is a sweep of sigma here


@st.fragment
def fields_tab() -> None:
    st.markdown(
        "The latent model's three fields over the plane: the **conditional** one (a class bound in), the "
        "**reference** one (the null label; for autoguidance, the weaker model's conditional field) and the "
        "**guided** one, as the chosen method mixes them. Press ▶ or drag the slider to move through the noise "
        "levels: at high sigma the fields differ little; near the data CFG's field points past the class's own "
        "density, towards where the class is most certain. Grey: held-out digits of the chosen class."
    )
    a, b, c, d, e = st.columns([1, 1.3, 1.2, 1.6, 1.2])
    label = a.selectbox("Class", list(range(10)), index=3, key="gd-field-class")
    method = b.selectbox("Method", list(FIELD_METHODS), format_func=FIELD_METHODS.get, key="gd-field-method")
    if method == "cfg++":
        scale = c.select_slider("λ", LAMBDA_CHOICES, value=0.6, key="gd-field-lambda")
    else:
        scale = c.select_slider("Guidance scale w", sorted({*SCALES, 0.5}), value=3.0, key="gd-field-w")
    lo, hi = d.select_slider("Noise levels sigma", INTERVAL_SIGMAS, value=(0.1, 10.0), key="gd-field-sigmas")
    kind = e.radio(
        "Field",
        ["score", "velocity"],
        horizontal=True,
        key="gd-field-kind",
        format_func={"velocity": "ODE velocity", "score": "Score"}.get,
    )
    side = st.slider("Grid points per side", 6, 30, 18, key="gd-field-side")
    if method == "cfg++":
        st.caption("CFG++'s scale depends on the step: here each level takes that of its step in a 20-step grid.")
    if method == "apg":
        st.caption("APG with η = 0 (its parallel part dropped) and no momentum: a field is one call per point.")
    plane = attempt(latent_plane)
    if plane is None:
        return
    model, points, labels = plane.model, plane.x0, torch.from_numpy(plane.labels.copy())
    guide = attempt(lambda: latent_diffusion(zoo_model(GUIDES["latent"]))) if method == "auto" else None
    if method == "auto" and guide is None:
        return
    sigmas = torch.logspace(torch.log10(torch.tensor(float(hi))), torch.log10(torch.tensor(float(lo))), 8)
    if lo >= hi:
        sigmas = torch.tensor([float(lo)])
    guidance = Guidance(method=method, scale=float(scale))
    panels = attempt(latent_fields, model, int(label), guidance, sigmas.tolist(), points, int(side), guide)
    if panels is None:
        return
    mine = model.to_latent(points[labels == int(label)])
    st.plotly_chart(field_figure(panels, kind, mine, height=460), key="gd-fields")
    st.caption("Arrows share one length scale per noise level (the longest are capped), so the panels compare.")
