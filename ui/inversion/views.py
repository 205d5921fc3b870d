"""The Inversion page's three tabs: a point cloud under the exact mixture denoiser, the latent MNIST plane, and
pixel MNIST digits (a held-out digit or an upload).

The point-cloud and latent tabs are fragments (their widgets rerun only the tab, and their results are
quick). The digits tab is not: its error measurement is a long job with a Stop, which only works in the page's
own run (a click inside a fragment waits for the fragment's run to end)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.data.images import image_strip
from core.diffusion.inversion import INVERTIBLE, regenerate
from core.diffusion.samplers import SAMPLERS
from core.diffusion.schedules import karras_sigmas
from core.labs import inversion as inv
from core.labs.guidance import SCALES
from core.labs.samplers import seconds_per_image
from ui.common import cache
from ui.common.live import job_estimate
from ui.common.widgets import attempt
from ui.inversion import figures, state

TOY_SIGMAS = (0.002, 80.0)  # the Karras grid the Ground truth page uses
LADDER_SAMPLERS = ("ddim", "heun", "dpmpp_2m")
LADDER_POINTS = 100
DIGIT_DEFAULTS = {"sampler": "ddim", "steps": 50}


def _sampler_box(key: str, container=st, default: str = "dpmpp_2m") -> str:
    return container.selectbox("Sampler", INVERTIBLE, index=INVERTIBLE.index(default), key=key,
                               format_func=lambda n: SAMPLERS[n].title,
                               help="Deterministic samplers only: one with fresh noise has no inverse.")  # fmt: skip


def _moments_table(eps: np.ndarray, names: list[str], key: str) -> None:
    rows = [{"": name, **inv.noise_moments(eps[:, k])} for k, name in enumerate(names)]
    st.dataframe(pd.DataFrame(rows).round(3), hide_index=True, width="stretch", key=key)


def _errors_line(result: inv.Inverted, units: str) -> None:
    st.markdown(
        f"RMS round-trip error **{float(result.ode_error.mean()):.3g}** at sigma_min (the two ODE solves), "
        f"**{float(result.error.mean()):.3g}** after sampling's last step to 0 ({units}); "
        f"{result.seconds:.2f} s both ways."
    )


# ---- a point cloud -----------------------------------------------------------------------------------------


@st.fragment
def cloud_tab() -> None:
    st.markdown(
        "Points of a 2-D Gaussian mixture, each run **up** the probability-flow ODE to its noise at sigma = 80 "
        "(lines, in VP coordinates x / sqrt(1 + sigma²) so data and noise share one scale) and sampled **back** "
        "on the same grid (rings). The mixture's denoiser is exact, so every bit of error is the solver's: it "
        "shrinks with the steps at each sampler's order (below)."
    )
    sources = state.cloud_sources()
    a, b, c, d, e = st.columns([2.2, 1, 1.2, 1, 0.8])
    source = a.selectbox("Point cloud", list(sources), format_func=sources.get, key="inv-cloud-set")
    n = b.slider("Points", 20, inv.MAX_POINTS, 200, 20, key="inv-cloud-n")
    name = _sampler_box("inv-cloud-sampler", c, "euler")
    steps = d.slider("Steps", 2, 100, 8, key="inv-cloud-steps")
    seed = e.number_input("Seed", 0, 2**31 - 1, 0, key="inv-cloud-seed")
    mix = attempt(state.cloud_mixture, source)
    if mix is None:
        return
    x0 = mix.sample(int(n), torch.Generator().manual_seed(int(seed)))[0]
    sigmas = karras_sigmas(int(steps), *TOY_SIGMAS).double()
    result = attempt(inv.invert_paths, name, mix.denoise, x0, sigmas)
    if result is None:
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.paths_figure(result), key="inv-cloud-paths")
    with right:
        _errors_line(result, "data units")
        eps = result.eps.numpy()
        st.plotly_chart(figures.noise_histogram({"x": eps[:, 0], "y": eps[:, 1]}), key="inv-cloud-hist")
        _moments_table(eps, ["x", "y"], "inv-cloud-moments")
        st.caption("Few steps leave the noise too narrow or skewed: the solver's error, not the data's shape.")
    st.markdown("**Round-trip error against the steps, every deterministic sampler** (same points; DDIM = Euler)")
    rows = state.memo("inv_cloud_ladder", (source, n, seed), lambda: list(inv.error_vs_steps(
        mix.denoise, x0, lambda k: karras_sigmas(k, *TOY_SIGMAS).double(), [s for s in INVERTIBLE if s != "ddim"],
        inv.TOY_LADDER)))  # fmt: skip
    st.plotly_chart(figures.error_figure(rows, with_orders=True), key="inv-cloud-errors")
    st.caption(
        "Slopes are fitted over NFE ≥ 8. A round trip cancels the leading error term of a symmetric method, so "
        "second-order samplers often come out steeper than their order; the first steps can overshoot badly."
    )


# ---- the latent plane --------------------------------------------------------------------------------------


@st.fragment
def latent_tab() -> None:
    st.markdown(
        "Held-out digits encoded by the bundled VAE (mnist-vae-2d) are points of a plane; the bundled latent "
        "model (mnist-latent-cond) runs them up to noise and back. With each digit's class bound in, the "
        "guidance scale changes the ODE itself, so the same scale must be used both ways."
    )
    setup = attempt(cache.latent_plane)
    if setup is None:
        return
    a, b, c, d, e = st.columns([1, 1.2, 1, 1.2, 1.4])
    n = a.slider("Digits", 20, len(setup.labels), 300, 20, key="inv-lat-n")
    name = _sampler_box("inv-lat-sampler", b)
    steps = c.slider("Steps", 2, 100, 20, key="inv-lat-steps")
    cond = d.toggle("Each digit's class", value=True, key="inv-lat-cond", help="Off: the unconditional model.")
    scale = e.select_slider("Guidance scale w", SCALES, value=1.0, key="inv-lat-scale", disabled=not cond)
    n, model = int(n), setup.model
    labels = torch.from_numpy(setup.labels[:n].copy())
    x0 = setup.x0[:n]
    sigmas = model.schedule.capped_sigmas(int(steps)).float()

    def denoiser_at(w: float):
        return model.conditioned(labels if cond else None, n, w)

    result = attempt(inv.invert_paths, name, denoiser_at(float(scale)), x0, sigmas)
    if result is None:
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.paths_figure(result, setup.labels[:n], model.to_latent), key="inv-lat-paths")
    with right:
        _errors_line(result, "standardised latent units")
        eps = result.eps.numpy()
        st.plotly_chart(figures.noise_histogram({"z1": eps[:, 0], "z2": eps[:, 1]}), key="inv-lat-hist")
        _moments_table(eps, ["z1", "z2"], "inv-lat-moments")
    m = min(n, LADDER_POINTS)  # the curves need fewer points than the picture
    key = (m, name, int(steps), cond, float(scale))

    def at(w: float):
        return model.conditioned(labels[:m] if cond else None, m, w)

    ladder = state.memo("inv_lat_ladder", key[:1] + key[3:], lambda: list(inv.error_vs_steps(
        at(float(scale)), x0[:m], lambda k: model.schedule.capped_sigmas(k).float(), LADDER_SAMPLERS,
        inv.STEP_LADDER)))  # fmt: skip
    left, right = st.columns(2)
    left.markdown(f"**Against the steps** (the first {m} digits; dotted: after the last step to 0)")
    left.plotly_chart(figures.error_figure(ladder), key="inv-lat-errors")
    if cond:
        by_scale = state.memo("inv_lat_scale", key[:3], lambda: list(inv.error_vs_scale(
            at, x0[:m], sigmas, name, SCALES)))  # fmt: skip
        right.markdown(f"**Against the guidance scale** ({SAMPLERS[name].title}, {len(sigmas) - 1} steps)")
        right.plotly_chart(figures.scale_figure(by_scale), key="inv-lat-scales")
        right.caption("Guidance makes the field steeper near the classes' modes, and the solver's error grows.")


# ---- digits ------------------------------------------------------------------------------------------------


def _pick_digit(models: dict[str, str]):
    """The controls for the digits tab: the model, digit A (held-out or upload), digit B, sampler and steps."""
    a, b, c, d = st.columns([2.2, 1.2, 1, 1])
    name = a.selectbox("Model", list(models), index=list(models).index("mnist-cond-cfg") if
                       "mnist-cond-cfg" in models else 0, format_func=models.get, key="inv-px-model")  # fmt: skip
    sampler = _sampler_box("inv-px-sampler", b, DIGIT_DEFAULTS["sampler"])
    steps = c.slider("Steps", 2, 200, DIGIT_DEFAULTS["steps"], key="inv-px-steps")
    source = d.radio("Digit A", ["Held-out digit", "Upload"], key="inv-px-source")
    return name, sampler, int(steps), source


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
    name, sampler, steps, source = _pick_digit(models)
    model = attempt(state.model, name)
    if model is None:
        return
    count = len(state.held_out().labels)
    a, b, c, d = st.columns([1, 1, 1.2, 1.8])
    if source == "Upload":
        upload = a.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"], key="inv-px-upload")
        if upload is None:
            st.info("Upload a picture of a digit: it is made grey, cropped to a centred square and shrunk to 28×28.")
            return
        found = attempt(state.uploaded_digit, upload.getvalue(), upload.name)
        if found is None:
            return
        digit_a, caption_a = found
        label_a = None
    else:
        index_a = a.number_input("Digit A (#)", 0, count - 1, 0, key="inv-px-a")
        digit_a, label_a, caption_a = state.data_digit(int(index_a))
    index_b = b.number_input("Digit B (#)", 0, count - 1, 1, key="inv-px-b")
    digit_b, label_b, caption_b = state.data_digit(int(index_b))
    conditional = bool(model.num_classes) and model.null_label is not None
    scale, class_a = 1.0, None
    if conditional:
        choices = (["own"] if label_a is not None else []) + ["none", *range(10)]
        names = {"own": f"its own ({label_a})", "none": "none (unconditional)"}
        picked = c.selectbox("Class of A", choices, format_func=lambda k: names.get(k, str(k)),
                             key=f"inv-px-class-{source}", help="The class bound in, both ways.")  # fmt: skip
        class_a = label_a if picked == "own" else None if picked == "none" else int(picked)
        scale = d.select_slider("Guidance scale w (both ways)", SCALES, value=1.0, key="inv-px-scale",
                                disabled=class_a is None)  # fmt: skip
    sigmas = model.schedule.capped_sigmas(steps).float()
    x0 = torch.stack([digit_a, digit_b])
    key = (name, sampler, steps, caption_a, float(digit_a.sum()), caption_b, class_a, label_b, float(scale))
    labels = None if class_a is None else torch.tensor([class_a, label_b])
    result = attempt(state.memo, "inv_px_result", key, lambda: inv.invert_paths(
        sampler, inv.image_denoiser(model, labels, scale, batch=2), x0, sigmas))  # fmt: skip
    if result is None:
        return
    _round_trip_view(result, [caption_a, caption_b])
    _noise_view(result, [caption_a, caption_b])
    _interpolation_view(model, sampler, sigmas, x0, key)
    if conditional and class_a is not None:
        _class_swap_view(model, sampler, sigmas, result.noise[:1], float(scale), class_a, key)
    st.divider()
    _measure_view(model, name, sampler, steps, int(index_b), conditional and class_a is not None)


def _round_trip_view(result: inv.Inverted, captions: list[str]) -> None:
    st.markdown("**The round trip**: digit · inverted noise (eps = x / sigma_max, grey = 0) · sampled back · |error|")
    cols = st.columns(2)
    for k, col in enumerate(cols):
        row = torch.stack([result.data[k], result.eps[k].float() / 3, result.sample[k],
                           (result.sample[k] - result.data[k]).abs() - 1])  # fmt: skip
        col.image(image_strip(row, height=84), caption=f"{captions[k]}: RMS error {float(result.error[k]):.3g} "
                  f"(ODE {float(result.ode_error[k]):.3g})")  # fmt: skip


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


def _interpolation_view(model, sampler: str, sigmas: torch.Tensor, x0: torch.Tensor, key: tuple) -> None:
    st.markdown("**Interpolation through the noise** (unconditional model: both digits inverted without a class)")
    frames = st.slider("Frames", 3, inv.MAX_FRAMES, 8, key="inv-px-frames")

    found = attempt(state.memo, "inv_px_interp", (*key[:6], frames), lambda: inv.interpolate(
        sampler, lambda batch: inv.image_denoiser(model, None, batch=batch), x0, sigmas, int(frames)))  # fmt: skip
    if found is None:
        return
    norms = found.mid_norms
    st.image(image_strip(found.spherical.clamp(-1, 1)), caption=f"spherical (slerp): mid-way noise norm "
             f"{norms[0]:.2f} of the ends' (the norm Gaussian noise concentrates on is kept)")  # fmt: skip
    st.image(image_strip(found.straight.clamp(-1, 1)), caption=f"straight line: mid-way norm {norms[1]:.2f} of "
             "the ends': the model sees a noise level it was never given at sigma_max")  # fmt: skip


def _class_swap_view(model, sampler, sigmas, noise, scale, class_a, key) -> None:
    st.markdown(f"**Class swap**: digit A's noise (inverted as a {class_a} at w = {scale:g}), sampled back as "
                "each class at the same scale")  # fmt: skip

    def make() -> torch.Tensor:
        labels = torch.arange(10)
        return regenerate(sampler, inv.image_denoiser(model, labels, scale), noise.expand(10, -1, -1, -1), sigmas)[1]

    found = attempt(state.memo, "inv_px_swap", key, make)
    if found is not None:
        st.image(image_strip(found.clamp(-1, 1)), caption="classes 0 to 9: the stroke's thickness, slant "
                 "and place carry over; what the class decides changes")  # fmt: skip


def _measure_view(model, name: str, sampler: str, steps: int, first: int, guided: bool) -> None:
    st.markdown("**Round-trip error against the steps** (and the guidance scale), on held-out digits")
    a, b, c = st.columns([1, 3, 2])
    images = a.slider("Digits", 1, inv.MAX_IMAGES, 2, key="inv-px-m-images")
    samplers = b.multiselect("Samplers", INVERTIBLE, default=list(LADDER_SAMPLERS), key="inv-px-m-samplers",
                             format_func=lambda n: SAMPLERS[n].title)  # fmt: skip
    ladder = c.multiselect("Steps", [2, 5, 10, 20, 50, 100, 200], default=[5, 10, 20, 50], key="inv-px-m-steps")
    scale_sweep = guided and st.toggle(f"Also against the guidance scale ({SAMPLERS[sampler].title}, {steps} steps)",
                                       value=True, key="inv-px-m-scale")  # fmt: skip
    if not samplers or not ladder:
        st.info("Choose at least one sampler and one step count.")
        return
    evaluations = inv.round_trip_evaluations(samplers, ladder, int(images), guided)
    if scale_sweep:
        evaluations += inv.round_trip_evaluations([sampler], [steps], int(images), True) * len(SCALES)
    fits = job_estimate(lambda: evaluations * seconds_per_image(model, int(images)), "measuring")
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Measure", type="primary", key="inv-px-measure", disabled=not fits)
    b2.button("Stop", key="inv-px-stop", help="Keeps the round trips measured so far.")
    progress = st.empty()
    digits = state.held_out()
    end = min(first + int(images), len(digits.labels))
    key = (name, first, end, sorted(samplers), sorted(ladder), guided, sampler, steps, scale_sweep)
    if clicked:
        x0 = torch.stack([state.data_digit(i)[0] for i in range(first, end)])
        labels = torch.from_numpy(digits.labels[first:end].copy()) if guided else None
        denoiser = inv.image_denoiser(model, labels, batch=len(x0))
        grid = lambda k: model.schedule.capped_sigmas(k).float()  # noqa: E731
        rows = inv.error_vs_steps(denoiser, x0, grid, samplers, sorted(ladder), 1.0 if guided else float("nan"))
        if scale_sweep:
            sigmas = model.schedule.capped_sigmas(steps).float()
            rows = itertools.chain(rows, inv.error_vs_scale(lambda w: inv.image_denoiser(model, labels, w), x0, sigmas,
                                                   sampler, SCALES))  # fmt: skip
        total = len(samplers) * len(ladder) + (len(SCALES) if scale_sweep else 0)
        attempt(state.measure, key, rows, total, progress)
    found = state.measured(key)
    if not found or not found[0]:
        st.info(f"Press **Measure**: digits #{first} to #{end - 1} (starting at digit B), every sampler and step "
                "count you chose, up and back.")  # fmt: skip
        return
    done, planned = found
    if len(done) < planned:
        st.warning(f"Stopped after {len(done)} of {planned} round trips; Measure again for all of them.")
    n_steps = len(samplers) * len(ladder)  # the step rows come first, then the scale rows
    by_steps, by_scale = done[:n_steps], done[n_steps:]
    left, right = st.columns(2)
    left.plotly_chart(figures.error_figure(by_steps), key="inv-px-m-steps-fig")
    if by_scale:
        right.plotly_chart(figures.scale_figure(by_scale), key="inv-px-m-scale-fig")
    table = figures.error_rows(by_steps) + figures.error_rows(by_scale, "scale")
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", key="inv-px-m-table")
