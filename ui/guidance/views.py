"""The Guidance page's two tabs: the scale sweep (a long job with a Stop, so in the page's own run, not a
fragment) and the latent plane's three fields (a fragment: quick, and its widgets rerun only the tab)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st
import torch

from core.data.images import image_strip, uint8_to_tensor
from core.diffusion.samplers import SAMPLERS
from core.labs import guidance as gd
from core.labs.compare import CHUNK
from core.labs.samplers import seconds_per_image
from ui.common import jobs
from ui.common.cache import digit_features, latent_plane, mnist_digits, zoo_model
from ui.common.clouds import field_figure
from ui.common.live import ProgressBar, Throttle, job_estimate
from ui.common.memo import Memo
from ui.common.widgets import attempt, run_job
from ui.guidance import figures

PIXEL, LATENT, VAE, CLASSIFIER = "mnist-cond-cfg", "mnist-latent-cond", "mnist-vae-2d", "mnist-lenet"
SOURCES = {"pixel": f"Pixel UNet ({PIXEL})", "latent": f"Latent model ({LATENT}, decoded by {VAE})"}
INTERVAL_SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.28, 0.5, 1.0, 2.0, 5.42, 10.0, 20.0, 40.0, 80.0)
SHOWN = 10  # samples kept per scale for the grid: one per class

Series = tuple[str, tuple[float, float] | None]  # a series' name and its guidance interval (None: always guided)


@dataclass(frozen=True)
class SweepKey:
    """What a sweep was run with: the model, sampler, steps, samples per scale, the scales and the series."""

    source: str
    sampler: str
    steps: int
    n: int
    scales: tuple[float, ...]
    plan: tuple[Series, ...]


@dataclass
class Sweep:
    """A sweep's rows and each scale's first ten digits per series, kept through `tally` as each scale is
    measured (a Stop keeps them)."""

    tally: jobs.Tally
    series: dict[str, list[gd.SweepRow]] = field(default_factory=dict)
    images: dict[str, dict[float, torch.Tensor]] = field(default_factory=dict)  # series -> scale -> [10, 1, 28, 28]
    real: gd.SweepRow | None = None

    def keep(self, name: str, row: gd.SweepRow, images: torch.Tensor) -> None:
        self.series.setdefault(name, []).append(row)
        self.images.setdefault(name, {})[row.scale] = images


SWEEP = Memo[SweepKey, Sweep]("gd-sweep")


def _draw(source: str, sampler: str, steps: int, interval: tuple[float, float] | None) -> gd.DrawFn:
    if source == "pixel":
        return gd.pixel_draw(zoo_model(PIXEL), sampler, steps, interval)
    plane = latent_plane()
    return gd.latent_draw(plane.model, plane.vae, sampler, steps, interval)


def _seconds(source: str, sampler: str, steps: int, n: int, scales: list[float], series: int) -> float:
    """The sweep's time on this server: the pixel model's measured speed times its image evaluations (each
    guided scale runs two halves); the latent model's MLP is quick, so its decoding and scoring dominate."""
    if source == "latent":
        return 0.002 * n * len(scales) * series
    evaluations = sum(SAMPLERS[sampler].nfe(steps) * (1 if w == 1.0 else 2) for w in scales) * n * series
    return evaluations * seconds_per_image(zoo_model(PIXEL), min(n, CHUNK))


def _reference() -> tuple[torch.nn.Module, Any]:
    return zoo_model(CLASSIFIER).module, digit_features(CLASSIFIER)


def _start(key: SweepKey, progress: Any, results: Any) -> None:
    """A new sweep kept for `key` (once the server admitted the job), run with its points redrawn in `results`."""
    sweep = jobs.start(SWEEP, key, Sweep(jobs.Tally(planned=len(key.scales) * len(key.plan))))
    results.caption("Each scale's points appear here as soon as it is measured.")
    throttle = Throttle(1.0)

    def redraw() -> None:
        if throttle.ready():
            with results.container():
                _show(sweep, live=f"-live-{sweep.tally.done}")

    _run(sweep, key, progress, redraw)


def _run(sweep: Sweep, key: SweepKey, progress: Any, redraw: Callable[[], None]) -> None:
    """Every series at every scale; each row (and the scale's first ten digits) is kept as it is measured, and
    `redraw` shows what is kept so far."""
    draws = [(name, _draw(key.source, key.sampler, key.steps, interval)) for name, interval in key.plan]
    classifier, reference = _reference()
    images, labels = mnist_digits("train", key.n)  # a head of the training digits other pages decode too
    real = uint8_to_tensor(images), torch.from_numpy(labels.copy())
    row = next(gd.sweep(lambda *_: real, [float("nan")], len(labels), classifier, reference))
    if not sweep.tally.keep(partial(setattr, sweep, "real", row)):
        return
    bar = ProgressBar(progress)
    bar.show(0.0, f"0 of {sweep.tally.planned} scales…")
    for name, draw in draws:
        drawn: dict[float, torch.Tensor] = {}

        def keeping(w: float, k: int, seed: int, draw: gd.DrawFn = draw, drawn: dict = drawn):
            images, asked = draw(w, k, seed)
            drawn[w] = images[:SHOWN]
            return images, asked

        for row in gd.sweep(keeping, key.scales, key.n, classifier, reference):
            if not sweep.tally.add(partial(sweep.keep, name, row, drawn.pop(row.scale))):
                return  # a later run has shown the sweep as stopped
            done, total = sweep.tally.done, sweep.tally.planned
            bar.show(done / total, f"{done} of {total} scales · {name}, w = {row.scale:g} took {row.seconds:.1f} s")
            redraw()


def sweep_tab() -> None:
    st.markdown(
        "Classifier-free guidance pushes each sample towards its class: D_w = D_uncond + w (D_cond - D_uncond). "
        "Here both class-conditional models draw the same number of digits of every class at each scale, from "
        "the same seeds, and the bundled LeNet reads them: **accuracy** (read as the class asked for), "
        "**diversity** (mean pairwise distance of one class's samples in LeNet's features) and **FD-LeNet** "
        "to held-out digits, each with its standard error. A **guidance interval** (Kynkäänniemi et al. 2024) "
        "guides only for sigma in (low, high]: most of guidance's gain with less of its cost in diversity."
    )
    a, b, c, d = st.columns([2.2, 1.2, 1, 1.2])
    source = a.radio("Model", list(SOURCES), format_func=SOURCES.get, key="gd-source")
    sampler = b.selectbox(
        "Sampler",
        list(SAMPLERS),
        index=list(SAMPLERS).index("dpmpp_2m"),
        key="gd-sampler",
        format_func=lambda s: SAMPLERS[s].title,
    )
    steps = c.slider("Steps", 2, 50, 20, key="gd-steps")
    n = d.select_slider(
        "Samples per scale",
        [20, 50, 100, 200, 300, 500],
        value=50 if source == "pixel" else 200,
        key=f"gd-n-{source}",
        help="Spread evenly over the ten classes.",
    )
    e, f = st.columns([3, 2])
    scales = e.multiselect("Scales w", sorted({*gd.SCALES, 0.5, 4.0, 12.0}), default=list(gd.SCALES), key="gd-scales")
    with f:
        use_interval = st.toggle("Also with a guidance interval", value=True, key="gd-use-interval")
        lo, hi = st.select_slider(
            "Guide only for sigma in", INTERVAL_SIGMAS, value=(0.28, 5.42), key="gd-interval", disabled=not use_interval
        )
    scales = sorted(float(w) for w in scales)
    plan: list[Series] = [("always", None)]
    if use_interval:
        plan.append((f"sigma in ({lo:g}, {hi:g}]", (float(lo), float(hi))))
    if use_interval and lo >= hi:
        st.warning("The interval is empty (low = high): guidance would never act. Widen it.")
        plan = plan[:1]
    key = SweepKey(source, sampler, int(steps), int(n), tuple(scales), tuple(plan))
    fits = bool(scales) and job_estimate(
        lambda: _seconds(source, sampler, int(steps), int(n), scales, len(plan)), "sampling and scoring"
    )
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Sweep", type="primary", key="gd-go", disabled=not fits)
    b2.button("Stop", key="gd-stop", help="Keeps the scales measured so far.")
    progress, results = st.empty(), st.empty()  # the results' place replaces the hint at once
    if clicked:
        run_job("guidance sweep", _start, key, progress, results)
        progress.empty()
    with results.container():
        _results(jobs.shown(SWEEP), key, bool(scales))


def _results(found: tuple[SweepKey, Sweep] | None, key: SweepKey, scales: bool) -> None:
    """The kept sweep with its notes, or a hint."""
    if found is None:
        st.info("Choose the scales and press **Sweep**." if scales else "Choose at least one scale.")
        return
    made_for, sweep = found
    if made_for != key:
        st.caption("These results are for other settings than those above; press **Sweep** for these.")
    many = "scales" if len(made_for.plan) == 1 else "scales of the two series"
    if stopped := sweep.tally.stopped(many, "any scale was measured", "press **Sweep** to measure them all"):
        st.warning(stopped)
    if sweep.series:
        _show(sweep)


def _show(sweep: Sweep, live: str = "") -> None:
    """The sweep's figure, table and digits; while it runs (`live`: a suffix for this redraw's element keys),
    without the download."""
    st.plotly_chart(figures.sweep_figure(sweep.series, sweep.real), key=f"gd-sweep-fig{live}")
    rows = pd.DataFrame(figures.sweep_rows(sweep.series, sweep.real))
    st.dataframe(rows, hide_index=True, width="stretch", key=f"gd-sweep-table{live}")
    if not live:
        csv = rows.to_csv(index=False)
        st.download_button("Download the table (CSV)", csv, "guidance_sweep.csv", "text/csv", key="gd-csv")
    _grids(sweep)


def _grids(sweep: Sweep) -> None:
    st.markdown("**One digit of each class per scale** (the same seeds in every row)")
    cols = st.columns(len(sweep.images))
    for col, (name, by_scale) in zip(cols, sweep.images.items(), strict=True):
        col.caption(name)
        for w, images in sorted(by_scale.items()):
            col.image(image_strip(images.clamp(-1, 1), height=40), caption=f"w = {w:g}")


# ---- fields in the latent plane ----------------------------------------------------------------------------


@st.fragment
def fields_tab() -> None:
    st.markdown(
        "The latent model's three fields over the plane: the **conditional** one (a class bound in), the "
        "**unconditional** one (the null label) and the **guided** one, the unconditional field plus w times "
        "their difference. Press ▶ or drag the slider to move through the noise levels: at high sigma the "
        "fields differ little; near the data the guided field points past the class's own density, towards "
        "where the class is most certain. Grey: held-out digits of the chosen class."
    )
    a, b, c, d = st.columns([1, 1.2, 1.6, 1.2])
    label = a.selectbox("Class", list(range(10)), index=3, key="gd-field-class")
    scale = b.select_slider("Guidance scale w", [0.0, 0.5, 1.5, 2.0, 3.0, 5.0, 8.0], value=3.0, key="gd-field-w")
    lo, hi = c.select_slider("Noise levels sigma", INTERVAL_SIGMAS, value=(0.1, 10.0), key="gd-field-sigmas")
    kind = d.radio(
        "Field",
        ["score", "velocity"],
        horizontal=True,
        key="gd-field-kind",
        format_func={"velocity": "ODE velocity", "score": "Score"}.get,
    )
    side = st.slider("Grid points per side", 6, 30, 18, key="gd-field-side")
    plane = attempt(latent_plane)
    if plane is None:
        return
    model, points, labels = plane.model, plane.x0, torch.from_numpy(plane.labels.copy())
    sigmas = torch.logspace(torch.log10(torch.tensor(float(hi))), torch.log10(torch.tensor(float(lo))), 8)
    if lo >= hi:
        sigmas = torch.tensor([float(lo)])
    panels = attempt(gd.latent_fields, model, int(label), float(scale), sigmas.tolist(), points, int(side))
    if panels is None:
        return
    mine = model.to_latent(points[labels == int(label)])
    st.plotly_chart(field_figure(panels, kind, mine, height=460), key="gd-fields")
    st.caption("Arrows share one length scale per noise level (the longest are capped), so the panels compare.")
