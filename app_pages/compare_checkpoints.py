"""Compare checkpoints: the same noise through 2-4 models, side by side, timed and (for MNIST) scored."""

import streamlit as st

from core.errors import AtlasError
from core.grids import make_grid, to_uint8, upscale_nearest
from core.samplers import SAMPLERS
from ui.cache import image_set, zoo_model
from ui.checkpoints import MAX_QUALITY_SAMPLES, held_out_features, load_checkpoints, measure, quality_row, settings_for
from ui.sampler_controls import pixel_models
from ui.sampling_run import run_sampler

st.title("Compare checkpoints")
st.markdown("Two to four models, one sampler, the same starting noise for all: what differs is the checkpoint.")

options = pixel_models()
chosen = st.multiselect(
    "Checkpoints (2-4)", list(options), list(options)[:2], format_func=options.get, max_selections=4, key="ck-models"
)
typed = st.text_input("…or add a Hub repo id", key="ck-repo", placeholder="google/ddpm-cifar10-32")
c1, c2, c3, c4 = st.columns(4)
names = list(SAMPLERS)
sampler = c1.selectbox(
    "Sampler", names, names.index("dpmpp_2m"), format_func=lambda n: SAMPLERS[n].title, key="ck-sampler"
)
steps = int(c2.number_input("Steps", 1, 1000, 20, key="ck-steps"))
seed = int(c3.number_input("Seed", 0, 2**31 - 100, 0, key="ck-seed"))
batch = c4.slider("Images", 1, 36, 16, key="ck-batch")
label_choice = st.selectbox("Class (for class-conditional models)", ["none", *range(10)], key="ck-class")
label = None if label_choice == "none" else int(label_choice)

loaded, failures = load_checkpoints(chosen, typed)
if len({m.sample_shape for m in loaded.values()}) > 1:
    shapes = ", ".join(f"{n}: {'x'.join(map(str, m.sample_shape))}" for n, m in loaded.items())
    st.error(f"These checkpoints make images of different shapes, so they cannot share noise ({shapes}).")
    st.stop()
if len(loaded) + len(failures) < 2:
    st.info("Pick at least two checkpoints.")
    st.stop()

go = st.button("Sample", type="primary", key="ck-go")
columns = st.columns(len(loaded) + len(failures))
for col, (name, message) in zip(columns[len(loaded) :], failures.items(), strict=True):
    col.markdown(f"**{name}**")
    col.error(message)
for col, (name, model) in zip(columns, loaded.items(), strict=False):
    col.markdown(f"**{model.entry.title}**")
    col.caption(f"{model.param_count / 1e6:.2f}M parameters · {model.file_bytes / 1e6:.1f} MB · {model.entry.source}")
    if go:
        try:
            st.session_state[f"ck-result-{name}"] = run_sampler(
                model, settings_for(model, sampler, steps, seed, batch, label), every=steps + 1, keep=1
            )
        except AtlasError as e:
            col.error(str(e))
    result = st.session_state.get(f"ck-result-{name}")
    if result is not None:
        col.image(upscale_nearest(make_grid(to_uint8(result.images)), 320), width="stretch")
        speed = result.settings.batch / result.seconds
        col.caption(f"{result.seconds:.2f} s · {speed:.1f} images/s · NFE {result.settings.nfe}")

mnist = {n: m for n, m in loaded.items() if m.entry.data == "mnist" and m.sample_shape == (1, 28, 28)}
if mnist:
    st.subheader("Quality (MNIST checkpoints)")
    st.caption(
        "FD-LeNet: the Fréchet distance to held-out digits in the bundled classifier's features (the FID formula, "
        "not Inception FID); lower is better."
    )
    n = st.slider("Samples per checkpoint", 100, MAX_QUALITY_SAMPLES, 300, 100, key="ck-n")
    if st.button("Measure", key="ck-measure"):
        try:
            classifier = zoo_model("mnist-lenet").module
            reference = held_out_features(classifier, image_set("mnist", "test").images)
            bar = st.progress(0.0, text="Sampling and scoring…")
            for k, (name, model) in enumerate(mnist.items()):
                settings = settings_for(model, sampler, steps, seed, 1, label)
                report = lambda f, k=k: bar.progress((k + f) / len(mnist))  # noqa: E731
                st.session_state[f"ck-quality-{name}"] = measure(model, settings, n, classifier, reference, report)
        except AtlasError as e:
            st.error(str(e))
    rows = [quality_row(n, st.session_state[f"ck-quality-{n}"]) for n in mnist if f"ck-quality-{n}" in st.session_state]
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
