"""Samplers: the reverse process live on any zoo model, each sampler's maths and code, same-seed comparisons."""

from dataclasses import replace

import streamlit as st

from core.diffusion.samplers import SAMPLERS
from core.labs.samplers import sampling_seconds
from ui.common.cache import zoo_model
from ui.common.live import job_estimate
from ui.common.models import compatible_models, pick_model
from ui.common.widgets import attempt, run_job
from ui.samplers.compare_view import run_comparison, show_comparison
from ui.samplers.controls import model_changed, sampler_settings
from ui.samplers.docs import code_shown, show_maths
from ui.samplers.from_file import load_settings_box
from ui.samplers.grid_search import grid_search_tab
from ui.samplers.live import generate_live, show_result, show_stopped

st.title("Samplers")
st.markdown(
    "Every sampler here walks the same denoiser $D(x, \\sigma) \\approx x_0$ from noise down to $\\sigma = 0$; "
    "they differ only in how they step. Pick a model and a sampler in the sidebar, and watch."
)

load_settings_box("smp")  # "Load settings from a file": sets the sidebar widgets' state (ui/samplers/from_file.py)

with st.sidebar:
    st.header("Model and sampler")
    loaded = pick_model("smp-model", on_change=model_changed("smp"))  # defaults follow the model
    settings = sampler_settings("smp", loaded) if loaded is not None else None

generate_tab, explain_tab, compare_tab, grid_tab = st.tabs(["Generate", "Maths and code", "Compare", "Step grid"])

with generate_tab:
    fits = loaded is not None and job_estimate(lambda: sampling_seconds(loaded, settings), "sampling")
    if loaded is None:
        st.info("Choose a model that is available here to start.")
    elif st.button("Generate", type="primary", key="smp-go", disabled=not fits):
        run_job("sampling", generate_live, loaded, settings, "smp")
    else:
        show_stopped("smp")
    show_result("smp", loaded.name if loaded is not None else None, settings)

with explain_tab:
    name = settings.sampler if settings is not None else "dpmpp_2m"
    spec = SAMPLERS[name]
    noisy = spec.injects_noise(settings.options if settings is not None else None)
    st.caption(
        f"Order {spec.order} · {'stochastic' if noisy else 'deterministic'} · {spec.calls_per_step} model "
        f"call(s) per step · {spec.paper}. The code shown is the function that runs."
    )
    maths, code = st.columns([1, 1.25], gap="medium")
    with maths:
        show_maths(spec.doc)
    code.code(code_shown(spec.fn, {s.fn.__name__: s.fn for s in SAMPLERS.values()}), language="python", wrap_lines=True)

with compare_tab:
    if loaded is None or settings is None:
        st.info("Choose a model first.")
    else:
        st.caption("Every cell starts from the same noise (image k from seed + k), so differences are the sampler's.")
        chosen = st.multiselect(
            "Samplers",
            list(SAMPLERS),
            ["euler", "heun", "dpmpp_2m", "euler_ancestral"],
            format_func=lambda n: SAMPLERS[n].title,
            key="cmp-samplers",
        )
        step_counts = st.multiselect("Step counts", [5, 10, 20, 50, 100], [10, 20], key="cmp-steps")
        fits = compatible_models(loaded)
        extra = (
            st.multiselect("Also compare checkpoints", list(fits), format_func=fits.get, key="cmp-models")
            if fits
            else []
        )
        per_cell = st.slider("Images per cell", 1, 16, 8, key="cmp-n")
        if st.button("Compare", key="cmp-go"):
            models = [loaded, *(m for m in (attempt(zoo_model, n) for n in extra) if m is not None)]
            run_job("samplers compared", run_comparison, models, chosen, step_counts, replace(settings, batch=per_cell))
        show_comparison()

with grid_tab:
    if loaded is None or settings is None:
        st.info("Choose a model first.")
    else:
        grid_search_tab(loaded, settings)
