"""The sidebar every page shares: where the app runs."""

from __future__ import annotations

import streamlit as st

from core.device import describe_device


def render_sidebar() -> None:
    info = describe_device()
    with st.sidebar:
        st.caption(f"Device: **{info.kind}** ({info.name}) · torch {info.torch_version}")
