"""Home: what the app is, where it runs, what it holds."""

import streamlit as st

from core.device import describe_device
from ui.common.cache import loaded_models, registry
from ui.common.tables import ABSENT, show_table
from ui.home.tables import loaded_table, model_table, sampler_table, schedule_table
from ui.shell import PAGES

st.title("Diffusion Atlas")
st.markdown(
    "See and compare what diffusion models do: how noise destroys an image, how each reverse sampler "
    "walks back from noise to data, and how the choices of schedule, sampler and step count change the "
    "result. Everything runs on this machine; bigger checkpoints come from the Hugging Face Hub when online."
)

info = describe_device()
device_col, torch_col, threads_col = st.columns(3)
device_col.metric("Device", info.kind.upper(), help=info.name)
torch_col.metric("PyTorch", info.torch_version)
threads_col.metric("CPU threads", info.threads)
st.caption(f"Running on {info.name}.")

st.subheader("Pages")
for page in PAGES:
    st.page_link(page.path, label=f"**{page.title}**: {page.blurb}", icon=page.icon)

st.subheader("The engine")
st.markdown(
    "Every sampler is one function over one denoiser interface, $D(x, \\sigma) \\approx x_0$ with "
    "$x = x_0 + \\sigma\\epsilon$, so each runs on every model and every schedule."
)
show_table(sampler_table(), width="stretch")
show_table(schedule_table(), width="stretch")

st.subheader("The model zoo")
st.markdown(
    "Bundled models work offline; Hub models are downloaded once into the Hugging Face cache "
    "(`python -m zoo fetch NAME`), after which they work offline too."
)
show_table(model_table(registry()), width="stretch")
st.caption(
    f"{ABSENT} in these tables: nothing there (a sampler without options, a schedule without a β range, an "
    "unconditional model's classes)."
)

with st.expander("Models loaded in this server"):
    st.caption(
        "Loaded models are shared by every session and never changed by one. The fingerprint (SHA-256 of the "
        "weights) lets you check: it stays the same however many people sample or train."
    )
    loaded = loaded_models()
    if loaded:
        st.table(loaded_table(loaded))
    else:
        st.write("None yet: pages load models when they first need them.")
