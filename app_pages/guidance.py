"""Guidance: what the classifier-free guidance scale trades, measured on both conditional MNIST models."""

import streamlit as st

from ui.guidance.views import fields_tab, sweep_tab

st.title("Guidance")
st.markdown(
    "A class-conditional model trained with a null label can be **guided**: its conditional and unconditional "
    "predictions are mixed with a scale w (Ho & Salimans 2022). w = 0 is the unconditional model, w = 1 the "
    "conditional one, and larger w trades variety for fidelity to the class. This page measures the trade and "
    "shows where in the plane it comes from."
)
tabs = st.tabs(["Scale sweep", "Fields in the latent plane"])
with tabs[0]:
    sweep_tab()
with tabs[1]:
    fields_tab()
