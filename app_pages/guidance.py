"""Guidance: what each guidance method trades, on both conditional MNIST models and on an exact mixture."""

import streamlit as st

from ui.guidance.exact import exact_tab
from ui.guidance.fields import fields_tab
from ui.guidance.from_file import exact_box, sweep_box
from ui.guidance.sweep import sweep_tab

st.title("Guidance")
st.markdown(
    "A class-conditional model can be **guided** towards its class by mixing its prediction with a reference "
    "one at a scale w: the unconditional model's (classifier-free guidance, Ho & Salimans 2022, and its "
    "variants: rescaled, projected (APG), CFG++, limited to a σ interval) or a weaker model's (autoguidance). "
    "w = 1 is the conditional model, and larger w trades variety for fidelity to the class. This page measures "
    "the trade on MNIST, settles it on a law whose every density is known, and shows where it comes from."
)
tabs = st.tabs(["Scale sweep", "Exact 2-D mixture", "Fields in the latent plane"])
with tabs[0]:
    sweep_box()  # "Load settings from a file": a table the sweep exported puts its settings back
    sweep_tab()
with tabs[1]:
    exact_box()
    exact_tab()
with tabs[2]:
    fields_tab()
