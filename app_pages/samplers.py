"""Samplers: the reverse process live on any zoo model, each sampler's maths and code, same-seed comparisons."""

from dataclasses import replace

import streamlit as st

from core.errors import AtlasError
from core.grids import make_grid, png_bytes, to_uint8, upscale_nearest
from core.samplers import SAMPLERS
from ui.cache import zoo_model
from ui.compare import compare
from ui.compare_view import show_comparison
from ui.live_sampling import generate_live, show_stopped
from ui.sampler_controls import compatible_models, pick_model, sampler_settings
from ui.sampler_docs import show_maths, source_without_docstring
from ui.sampler_figures import noise_chart, trajectory_gif

st.title("Samplers")
st.markdown(
    "Every sampler here walks the same denoiser $D(x, \\sigma) \\approx x_0$ from noise down to $\\sigma = 0$; "
    "they differ only in how they step. Pick a model and a sampler in the sidebar, and watch."
)

with st.sidebar:
    st.header("Model and sampler")
    loaded = pick_model("smp-model")
    settings = sampler_settings("smp", loaded) if loaded is not None else None

generate_tab, explain_tab, compare_tab = st.tabs(["Generate", "Maths and code", "Compare"])

with generate_tab:
    if loaded is None:
        st.info("Choose a model that is available here to start.")
    elif st.button("Generate", type="primary", key="smp-go"):
        try:
            st.session_state["smp-result"] = generate_live(loaded, settings, "smp")
        except AtlasError as e:
            st.error(str(e))
    else:
        show_stopped("smp")
    result = st.session_state.get("smp-result")
    if result is not None:
        s = result.settings
        st.subheader(f"{SAMPLERS[s.sampler].title}, {s.steps} steps")
        grid = upscale_nearest(make_grid(to_uint8(result.images)), 512)
        st.image(grid, caption=f"seeds {s.seed} to {s.seed + s.batch - 1}", width=min(640, grid.shape[1]))
        speed = st.columns(3)
        speed[0].metric("Seconds", f"{result.seconds:.2f}")
        speed[1].metric("Images/s", f"{s.batch / result.seconds:.1f}")
        speed[2].metric("Model calls (NFE)", s.nfe)
        st.plotly_chart(noise_chart(result.recorder, result.images), width="stretch")
        down = st.columns(2)
        down[0].download_button("Download the grid (PNG)", png_bytes(grid), "samples.png", "image/png", key="smp-png")
        gif = lambda: trajectory_gif(result.recorder, result.images)  # noqa: E731 (built only when clicked)
        down[1].download_button("Download the trajectory (GIF)", gif, "trajectory.gif", "image/gif", key="smp-gif")

with explain_tab:
    name = settings.sampler if settings is not None else "dpmpp_2m"
    spec = SAMPLERS[name]
    st.caption(
        f"Order {spec.order} · {'stochastic' if spec.stochastic else 'deterministic'} · {spec.calls_per_step} model "
        f"call(s) per step · {spec.paper}. The code shown is the function that runs."
    )
    maths, code = st.columns([1, 1.25], gap="medium")
    with maths:
        show_maths(spec.doc)
    code.code(source_without_docstring(spec.fn), language="python", wrap_lines=True)

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
            bar = st.progress(0.0, text="Comparing…")
            try:
                models = [loaded, *(zoo_model(n) for n in extra)]
                classifier = zoo_model("mnist-lenet").module if any(m.entry.data == "mnist" for m in models) else None
                cells = compare(
                    models, chosen, sorted(step_counts), replace(settings, batch=per_cell), classifier, bar.progress
                )
                st.session_state["cmp-cells"] = cells
            except AtlasError as e:
                st.error(str(e))
        show_comparison(st.session_state.get("cmp-cells") or [])
