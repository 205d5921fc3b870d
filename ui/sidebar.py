"""The sidebar every page shares: where the app runs and what the zoo has ready."""

from __future__ import annotations

import streamlit as st

from core.device import describe_device
from ui.cache import registry
from ui.zoo_summary import zoo_status


def render_sidebar() -> None:
    info = describe_device()
    with st.sidebar:
        st.caption(f"Device: **{info.kind}** ({info.name}) · torch {info.torch_version}")
        st.caption(zoo_status(registry()))
