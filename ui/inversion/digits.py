"""The Inversion page's digits tab: two digits (a held-out one or an upload, and another held-out one) run up
a pixel model's ODE and back, the inverted noise against N(0, I), interpolation through the noise, the class
swap (on the class-conditional model) and the error measurement (ui/inversion/measure.py).

Not a fragment: the measurement is a long job with a Stop, which only works in the page's own run (a click
inside a fragment waits for the fragment's run to end)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st
import torch

from core.data.images import image_strip
from core.diffusion.inversion import regenerate
from core.labs import inversion as inv
from core.labs.guidance.sweep import SCALES
from core.labs.samplers import ImageModel
from ui.common.widgets import attempt
from ui.inversion import figures, state
from ui.inversion.measure import measure_view
from ui.inversion.shared import sampler_box

DIGIT_DEFAULTS = {"sampler": "ddim", "steps": 50}


@dataclass(frozen=True, eq=False)
class Pair:
    """The two digits the tab inverts: A (held-out or an upload; label None for an upload) and B (held-out)."""

    x0: torch.Tensor  # [2, 1, 28, 28] in [-1, 1]
    captions: list[str]
    label_a: int | None
    label_b: int
    index_b: int


def _pick_model(models: dict[str, str]) -> tuple[str, str, int, str]:
    """The model, sampler and steps, and where digit A comes from."""
    a, b, c, d = st.columns([2.2, 1.2, 1, 1])
    default = list(models).index("mnist-cond-cfg") if "mnist-cond-cfg" in models else 0
    name = a.selectbox("Model", list(models), index=default, format_func=models.get, key="inv-px-model")
    sampler = sampler_box("inv-px-sampler", b, DIGIT_DEFAULTS["sampler"])
    steps = c.slider("Steps", 2, 200, DIGIT_DEFAULTS["steps"], key="inv-px-steps")
    source = d.radio("Digit A", ["Held-out digit", "Upload"], key="inv-px-source")
    return name, sampler, int(steps), source


def _pick_pair(source: str, a, b) -> Pair | None:
    """Digit A (a number input, or an upload decoded once) and digit B; None until there is an upload (or when
    it cannot be read, with a sentence)."""
    count = len(state.held_out().labels)
    if source == "Upload":
        upload = a.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"], key="inv-px-upload")
        if upload is None:
            st.info("Upload a picture of a digit: it is made grey, cropped to a centred square and shrunk to 28×28.")
            return None
        found = attempt(state.uploaded_digit, upload.getvalue(), upload.name)
        if found is None:
            return None
        (digit_a, caption_a), label_a = found, None
    else:
        index_a = a.number_input("Digit A (#)", 0, count - 1, 0, key="inv-px-a")
        digit_a, label_a, caption_a = state.data_digit(int(index_a))
    index_b = int(b.number_input("Digit B (#)", 0, count - 1, 1, key="inv-px-b"))
    digit_b, label_b, caption_b = state.data_digit(index_b)
    return Pair(torch.stack([digit_a, digit_b]), [caption_a, caption_b], label_a, label_b, index_b)


def _pick_class(pair: Pair, source: str, c, d) -> tuple[int | None, float]:
    """Digit A's class (its own, none or any) and the guidance scale, both ways."""
    choices = (["own"] if pair.label_a is not None else []) + ["none", *range(10)]
    names = {"own": f"its own ({pair.label_a})", "none": "none (unconditional)"}
    picked = c.selectbox(
        "Class of A",
        choices,
        format_func=lambda k: names.get(k, str(k)),
        key=f"inv-px-class-{source}",
        help="The class bound in, both ways.",
    )
    class_a = pair.label_a if picked == "own" else None if picked == "none" else int(picked)
    scale = d.select_slider(
        "Guidance scale w (both ways)", SCALES, value=1.0, key="inv-px-scale", disabled=class_a is None
    )
    return class_a, float(scale)


def digits_tab() -> None:
    st.markdown(
        "A digit run up the ODE of a pixel model to its noise and sampled back. The inverted noise should look "
        "like a draw from N(0, I); with it you can **interpolate** between two digits and, on the "
        "class-conditional model, **swap the class** while keeping the rest."
    )
    models = state.mnist_models()
    if not models:
        st.info("The zoo has no pixel MNIST model.")
        return
    name, sampler, steps, source = _pick_model(models)
    model = attempt(state.model, name)
    if model is None:
        return
    a, b, c, d = st.columns([1, 1, 1.2, 1.8])
    pair = _pick_pair(source, a, b)
    if pair is None:
        return
    conditional = bool(model.num_classes) and model.null_label is not None
    class_a, scale = _pick_class(pair, source, c, d) if conditional else (None, 1.0)
    sigmas = model.schedule.capped_sigmas(steps).float()
    key = state.PairKey(name, sampler, steps, pair.captions[0], float(pair.x0[0].sum()), pair.captions[1])
    trip = state.RoundTripKey(key, class_a, pair.label_b, scale)
    labels = None if class_a is None else torch.tensor([class_a, pair.label_b])
    result = attempt(
        state.ROUND_TRIP.make,
        trip,
        lambda: inv.invert_paths(sampler, inv.image_denoiser(model, labels, scale, batch=2), pair.x0, sigmas),
    )
    if result is None:
        return
    _round_trip_view(result, pair.captions)
    _noise_view(result, pair.captions)
    _interpolation_view(model, sigmas, pair.x0, key)
    if conditional and class_a is not None:
        _class_swap_view(model, sigmas, result.noise[:1], trip)
    st.divider()
    measure_view(model, name, sampler, steps, pair.index_b, conditional and class_a is not None)


def _round_trip_view(result: inv.Inverted, captions: list[str]) -> None:
    st.markdown("**The round trip**: digit · inverted noise (eps = x / sigma_max, grey = 0) · sampled back · |error|")
    cols = st.columns(2)
    for k, col in enumerate(cols):
        error = (result.sample[k] - result.data[k]).abs() - 1
        row = torch.stack([result.data[k], result.eps[k].float() / 3, result.sample[k], error])
        col.image(
            image_strip(row, height=84),
            caption=f"{captions[k]}: RMS error {float(result.error[k]):.3g} (ODE {float(result.ode_error[k]):.3g})",
        )


def _noise_view(result: inv.Inverted, captions: list[str]) -> None:
    fresh = torch.randn(result.eps[0].shape, generator=torch.Generator().manual_seed(0))
    left, right = st.columns([2, 3])
    sets = {captions[0]: result.eps[0].numpy(), captions[1]: result.eps[1].numpy()}
    left.plotly_chart(figures.noise_histogram(sets), key="inv-px-hist")
    right.markdown("**Is the inverted noise Gaussian?** Per image, beside a fresh N(0, I) draw of the same size:")
    rows = inv.image_noise_rows(torch.stack([result.eps[0], result.eps[1], fresh]), [*captions, "fresh N(0, I)"])
    right.dataframe(pd.DataFrame(rows).round(3), hide_index=True, width="stretch", key="inv-px-stats")
    right.caption(
        "Not quite: an inverted digit keeps its shape in the noise (the picture above), with too many values "
        "near 0 (the flat background maps to little noise: a high kurtosis), a neighbour correlation away "
        "from 0 and a KS distance far above the fresh draw's. Sampling still brings it back, but edits that "
        "assume Gaussian noise see the difference; more steps change this little, since the ODE, not the "
        "solver, makes it."
    )


def _interpolation_view(model: ImageModel, sigmas: torch.Tensor, x0: torch.Tensor, pair: state.PairKey) -> None:
    st.markdown("**Interpolation through the noise** (unconditional model: both digits inverted without a class)")
    frames = int(st.slider("Frames", 3, inv.MAX_FRAMES, 8, key="inv-px-frames"))

    def make() -> inv.Interpolation:
        denoiser_for = lambda batch: inv.image_denoiser(model, None, batch=batch)  # noqa: E731
        return inv.interpolate(pair.sampler, denoiser_for, x0, sigmas, frames)

    found = attempt(state.INTERPOLATION.make, state.InterpolationKey(pair, frames), make)
    if found is None:
        return
    norms = found.mid_norms
    st.image(
        image_strip(found.spherical.clamp(-1, 1)),
        caption=f"spherical (slerp): mid-way noise norm {norms[0]:.2f} of the ends' (the norm Gaussian noise "
        "concentrates on is kept)",
    )
    st.image(
        image_strip(found.straight.clamp(-1, 1)),
        caption=f"straight line: mid-way norm {norms[1]:.2f} of the ends': the model sees a noise level it was "
        "never given at sigma_max",
    )


def _class_swap_view(model: ImageModel, sigmas: torch.Tensor, noise: torch.Tensor, trip: state.RoundTripKey) -> None:
    class_a, scale = trip.class_a, trip.scale
    st.markdown(
        f"**Class swap**: digit A's noise (inverted as a {class_a} at w = {scale:g}), sampled back as each class "
        "at the same scale"
    )

    def make() -> torch.Tensor:
        denoiser = inv.image_denoiser(model, torch.arange(10), scale)
        return regenerate(trip.pair.sampler, denoiser, noise.expand(10, -1, -1, -1), sigmas)[1]

    found = attempt(state.CLASS_SWAP.make, trip, make)
    if found is not None:
        st.image(
            image_strip(found.clamp(-1, 1)),
            caption="classes 0 to 9: the stroke's thickness, slant and place carry over; what the class decides "
            "changes",
        )
