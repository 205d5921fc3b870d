"""Diffusion Atlas: `streamlit run streamlit_app.py`."""

import streamlit as st

from core.device import configure_server_threads
from ui.common.live import toolbar_stop_presses_page_stop
from ui.common.warmup import start_warmup
from ui.shell import render_sidebar, sections

st.set_page_config(page_title="Diffusion Atlas", page_icon=":material/blur_on:", layout="wide")
configure_server_threads()  # leave a core to the browser and the web server (see core/device.py)
start_warmup()  # slow first imports in the background (see ui/common/warmup.py)

navigation = st.navigation(
    {
        section: [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in pages]
        for section, pages in sections().items()
    }
)
render_sidebar()
toolbar_stop_presses_page_stop()
navigation.run()
