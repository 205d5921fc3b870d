"""Ground truth: a 2-D Gaussian mixture whose every quantity is known exactly, against samplers and models."""

import streamlit as st

from ui.common.widgets import attempt
from ui.ground_truth import figures
from ui.ground_truth.grids import grids_tab
from ui.ground_truth.mixture import mixture_picker
from ui.ground_truth.views import accuracy_tab, latent_tab, model_tab, probe_tab

st.title("Ground truth")
st.markdown(
    "For a Gaussian mixture everything is known in closed form: the denoiser, the score, the probability-flow "
    "ODE and the density at every noise level. Here those exact answers sit beside what samplers and learned "
    "models do, so you can see which sampler is accurate, what a model has learnt, and where it memorises."
)

st.subheader("1 · The mixture")
left, right = st.columns([3, 2])
with left:
    mixture = attempt(mixture_picker)
if mixture is None:  # the table is not a mixture (said above)
    st.stop()
with right:
    st.plotly_chart(figures.mixture_figure(mixture.mix, f"log p of {mixture.title}"), key="gt-mixture-fig")

st.subheader("2 · Against the truth")
tabs = st.tabs(
    ["Sampler accuracy", "Step grids", "Trajectory probe", "Likelihood and memorisation", "Latent MNIST likelihood"]
)
with tabs[0]:
    accuracy_tab(mixture)
with tabs[1]:
    grids_tab(mixture)
with tabs[2]:
    probe_tab(mixture)
with tabs[3]:
    model_tab(mixture)
with tabs[4]:
    latent_tab()
