"""Inversion: data run up the probability-flow ODE to its noise and back, for points, latents and digits."""

import streamlit as st

from ui.inversion.cloud import cloud_tab
from ui.inversion.digits import digits_tab
from ui.inversion.latent import latent_tab

st.title("Inversion")
st.markdown(
    "A deterministic sampler solves the probability-flow ODE, and an ODE can be solved in either direction. Run "
    "from an image **up** to sigma_max, it finds the noise that sampling would turn back into that image (DDIM "
    "inversion is the Euler case). How exact is the round trip, what does the found noise look like, and what "
    "can you do with it? Inversion uses the sampler's own steps on the reversed grid "
    "(`core/diffusion/inversion.py`); the data point is the state at the grid's smallest sigma, so the figures "
    "give the ODE's error there and the full one after sampling's last step to 0."
)
# One view at a time (not tabs, which would all run on every rerun): each computes its round trip on sight.
views = {"Point cloud (exact)": cloud_tab, "Latent MNIST plane": latent_tab, "MNIST digits": digits_tab}
view = st.segmented_control("Data", list(views), default="Point cloud (exact)", required=True, key="inv-view")
views[view]()
