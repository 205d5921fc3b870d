"""Compare checkpoints: the same noise through 2-4 models, side by side, timed and (for MNIST) scored."""

import streamlit as st

from core.data.images import enlarge, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.labs.compare import MAX_QUALITY_SAMPLES, is_mnist
from core.text import plain_label
from ui.common.models import pixel_models
from ui.common.widgets import attempt
from ui.compare_checkpoints import checkpoints

st.title("Compare checkpoints")
st.markdown("Two to four models, one sampler, the same starting noise for all: what differs is the checkpoint.")

options = pixel_models()
chosen = st.multiselect(
    "Checkpoints (2-4)", list(options), list(options)[:2], format_func=options.get, max_selections=4, key="ck-models"
)
typed = st.text_input("…or add a Hub repo id", key="ck-repo", placeholder="google/ddpm-cifar10-32", max_chars=200)
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

loaded, failures = checkpoints.load_checkpoints(chosen, typed)
if len({m.sample_shape for m in loaded.values()}) > 1:
    shapes = ", ".join(f"{n}: {'x'.join(map(str, m.sample_shape))}" for n, m in loaded.items())
    st.error(f"These checkpoints make images of different shapes, so they cannot share noise ({shapes}).")
    st.stop()
if len(loaded) + len(failures) < 2:
    st.info("Pick at least two checkpoints.")
    st.stop()

if st.button("Sample", type="primary", key="ck-go"):
    attempt(checkpoints.sample_all, loaded, sampler, steps, seed, batch, label)
columns = st.columns(len(loaded) + len(failures))
for col, (name, message) in zip(columns[len(loaded) :], failures.items(), strict=True):
    col.markdown(f"**{plain_label(name)}**")  # a typed repo id may be anything
    col.error(message)
for col, (name, model) in zip(columns, loaded.items(), strict=False):
    col.markdown(f"**{model.entry.title}**")
    col.caption(f"{model.param_count / 1e6:.2f}M parameters · {model.file_bytes / 1e6:.1f} MB · {model.entry.source}")
    result = checkpoints.result_of(name)
    if result is not None:
        col.image(enlarge(tile(to_uint8(result.images)), 320), width="stretch")
        speed = result.settings.batch / result.seconds
        col.caption(f"{result.seconds:.2f} s · {speed:.1f} images/s · NFE {result.settings.nfe}")
        if not checkpoints.is_current(result, model, sampler, steps, seed, batch, label):
            col.info("From earlier settings: press **Sample** for the current ones.")

mnist = {n: m for n, m in loaded.items() if is_mnist(m)}
if mnist:
    st.subheader("Quality (MNIST checkpoints)")
    st.caption(
        "FD-LeNet: the Fréchet distance to held-out digits in the bundled classifier's features (the FID formula, "
        "not Inception FID); lower is better."
    )
    n = st.slider("Samples per checkpoint", 100, MAX_QUALITY_SAMPLES, 300, 100, key="ck-n")
    if st.button("Measure", key="ck-measure"):
        attempt(checkpoints.measure_all, mnist, sampler, steps, seed, n, label)
    rows = checkpoints.quality_rows(list(mnist))
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
