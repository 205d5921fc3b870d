"""The Guidance page's MNIST sweep: every chosen method at its scales on either conditional model, a long job
with a Stop (so in the page's own run, not a fragment), drawn as each scale is measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st
import torch

from core.data.images import image_strip, uint8_to_tensor
from core.diffusion.samplers import SAMPLERS
from core.labs import provenance
from core.labs.compare import CHUNK
from core.labs.guidance import sweep as gd
from core.labs.latent import latent_diffusion
from core.labs.samplers import SamplerSettings, check_guide, evaluations_per_image, seconds_per_image
from ui.common import jobs
from ui.common.cache import digit_features, latent_plane, local_model, mnist_digits, zoo_model
from ui.common.live import ProgressBar, Throttle, job_estimate
from ui.common.memo import Memo
from ui.common.tables import show_table
from ui.common.widgets import run_job
from ui.guidance import figures
from ui.guidance.controls import cfgpp_note, plan_controls

PIXEL, LATENT, VAE, CLASSIFIER = "mnist-cond-cfg", "mnist-latent-cond", "mnist-vae-2d", "mnist-lenet"
GUIDES = {"pixel": "mnist-cond-guide", "latent": "mnist-latent-guide"}  # autoguidance's bundled weaker models
SOURCES = {"pixel": f"Pixel UNet ({PIXEL})", "latent": f"Latent model ({LATENT}, decoded by {VAE})"}
DEFAULT_METHODS = ["cfg", "auto"]  # the headline pair; a CPU server sweeps it within a job (4 series could not)
SHOWN = 10  # samples kept per scale for the grid: one per class
STUDY = "Guidance: what each method trades"  # the page its table's record names (ui/guidance/from_file.py)
SAMPLES = (20, 50, 100, 200, 300, 500)  # the samples-per-scale choices
MAX_STEPS = 50
BUNDLED = f"bundled weak model ({GUIDES['pixel']})"  # the pixel model's guide choices
OWN_GUIDE = "a checkpoint folder"


@dataclass(frozen=True)
class SweepKey:
    """What a sweep was run with: the model, sampler, steps, samples per scale, the series (each a method with
    its scales) and autoguidance's guide (a bundled model's name, or a checkpoint folder a person named)."""

    source: str
    sampler: str
    steps: int
    n: int
    plan: tuple[gd.Series, ...]
    guide: str = ""


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


def _draws(key: SweepKey) -> list[tuple[str, tuple[float, ...], gd.DrawFn]]:
    """Each series' name, scales and draw; autoguidance's guide is loaded and checked here, before the sweep
    starts (a guide refused leaves the sweep shown before in place)."""
    auto = any(s.guidance.method == "auto" for s in key.plan)
    if key.source == "pixel":
        model = zoo_model(PIXEL)
        guide = _pixel_guide(key.guide, model) if auto else None
        make = partial(gd.pixel_draw, model, key.sampler, key.steps)
    else:
        plane = latent_plane()
        guide = latent_diffusion(zoo_model(GUIDES["latent"])) if auto else None
        make = partial(gd.latent_draw, plane.model, plane.vae, key.sampler, key.steps)
    return [(s.name, s.scales, make(s.guidance, guide if s.guidance.method == "auto" else None)) for s in key.plan]


def _pixel_guide(guide: str, model: Any) -> Any:
    """The pixel model's guide as a denoiser: the bundled weaker model, or a checkpoint folder (zoo/local.py
    checks the path; core's `check_guide` that it draws the same digits with the same classes)."""
    loaded = zoo_model(guide) if guide == GUIDES["pixel"] else local_model(guide)
    check_guide(model, loaded)
    return loaded.denoiser


def _seconds(key: SweepKey) -> float:
    """The sweep's time on this server: the pixel model's measured speed times its image evaluations (guidance
    runs two predictions); the latent model's MLP is quick, so its decoding and scoring dominate."""
    if key.source == "latent":
        return 0.002 * key.n * sum(len(s.scales) for s in key.plan)
    model = zoo_model(PIXEL)
    runs = [
        SamplerSettings(sampler=key.sampler, steps=key.steps, guidance=s.at(w), spread_classes=True)
        for s in key.plan
        for w in s.scales
    ]
    evaluations = sum(evaluations_per_image(model, settings) for settings in runs) * key.n
    return evaluations * seconds_per_image(model, min(key.n, CHUNK))


def _reference() -> tuple[torch.nn.Module, Any]:
    return zoo_model(CLASSIFIER).module, digit_features(CLASSIFIER)


def _start(key: SweepKey, progress: Any, results: Any) -> None:
    """A new sweep kept for `key` (once the server admitted the job and its guide passed), run with its points
    redrawn in `results`."""
    draws = _draws(key)
    sweep = jobs.start(SWEEP, key, Sweep(jobs.Tally(planned=sum(len(s.scales) for s in key.plan))))
    results.caption("Each scale's points appear here as soon as it is measured.")
    throttle = Throttle(1.0)

    def redraw() -> None:
        if throttle.ready():
            with results.container():
                _show(sweep, live=f"-live-{sweep.tally.done}")

    _run(sweep, key, draws, progress, redraw)


def _run(sweep: Sweep, key: SweepKey, draws: list, progress: Any, redraw: Callable[[], None]) -> None:
    """Every series at every scale; each row (and the scale's first ten digits) is kept as it is measured, and
    `redraw` shows what is kept so far."""
    classifier, reference = _reference()
    images, labels = mnist_digits("train", key.n)  # a head of the training digits other pages decode too
    real = uint8_to_tensor(images), torch.from_numpy(labels.copy())
    row = next(gd.sweep(lambda *_: real, [float("nan")], len(labels), classifier, reference))
    if not sweep.tally.keep(partial(setattr, sweep, "real", row)):
        return
    bar = ProgressBar(progress)
    bar.show(0.0, f"0 of {sweep.tally.planned} scales…")
    for name, scales, draw in draws:
        drawn: dict[float, torch.Tensor] = {}

        def keeping(w: float, k: int, seed: int, draw: gd.DrawFn = draw, drawn: dict = drawn):
            images, asked = draw(w, k, seed)
            drawn[w] = images[:SHOWN]
            return images, asked

        for row in gd.sweep(keeping, scales, key.n, classifier, reference):
            if not sweep.tally.add(partial(sweep.keep, name, row, drawn.pop(row.scale))):
                return  # a later run has shown the sweep as stopped
            done, total = sweep.tally.done, sweep.tally.planned
            bar.show(done / total, f"{done} of {total} scales · {name}, w = {row.scale:g} took {row.seconds:.1f} s")
            redraw()


def sweep_tab() -> None:
    st.markdown(
        "Each method pushes every sample towards its class (see **Methods**' help). Here a class-conditional "
        "model draws the same number of digits of every class at each scale, from the same seeds, and the "
        "bundled LeNet reads them: **accuracy** (read as the class asked for), **diversity** (mean pairwise "
        "distance of one class's samples in LeNet's features), **FD-LeNet** to held-out digits, and "
        "**precision, recall, density, coverage** against as many held-out digits (quality and diversity "
        "measured apart), each with its standard error. Autoguidance guides with a weaker model: the bundled "
        "one (a smaller network trained a quarter as long) or your own checkpoint."
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
    steps = c.slider("Steps", 2, MAX_STEPS, 20, key="gd-steps")
    n = d.select_slider(
        "Samples per scale",
        SAMPLES,
        value=50 if source == "pixel" else 200,
        key=f"gd-n-{source}",
        help="Spread evenly over the ten classes.",
    )
    plan = plan_controls("gd", DEFAULT_METHODS)
    cfgpp_note(plan, sampler)
    auto = any(s.guidance.method == "auto" for s in plan.series)
    guide = _guide_choice(source) if auto else ""
    series = tuple(
        replace(s, name=f"Autoguidance ({guide if guide in GUIDES.values() else 'your checkpoint'})")
        if s.guidance.method == "auto"
        else s
        for s in plan.series
    )
    if plan.problem:
        st.warning(plan.problem)
    key = SweepKey(source, sampler, int(steps), int(n), series, guide)
    fits = bool(series) and (bool(guide) or not auto) and job_estimate(lambda: _seconds(key), "sampling and scoring")
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Sweep", type="primary", key="gd-go", disabled=not fits)
    b2.button("Stop", key="gd-stop", help="Keeps the scales measured so far.")
    progress, results = st.empty(), st.empty()  # the results' place replaces the hint at once
    if clicked:
        run_job("guidance sweep", _start, key, progress, results)
        progress.empty()
    with results.container():
        _results(jobs.shown(SWEEP), key, bool(plan.series))


def _guide_choice(source: str) -> str:
    """Autoguidance's guide: the bundled weaker model, or (pixel model) a checkpoint folder on this server;
    "" while the folder is not typed yet."""
    if source == "latent":
        return GUIDES[source]
    choice = st.radio("Autoguidance's guide", [BUNDLED, OWN_GUIDE], horizontal=True, key="gd-guide")
    if choice == BUNDLED:
        return GUIDES["pixel"]
    path = st.text_input(
        "Guide checkpoint folder",
        key="gd-guide-path",
        placeholder="runs/my-run/checkpoints/step_0001000",
        help="A diffusers UNet folder or a run's checkpoint under the allowed roots, class-conditional on the same "
        "ten classes (an early checkpoint or a smaller network of the same data).",
    )
    if not path.strip():
        st.info("Name the guide's checkpoint folder to sweep autoguidance with it.")
    return path.strip()


def _results(found: tuple[SweepKey, Sweep] | None, key: SweepKey, scales: bool) -> None:
    """The kept sweep with its notes, or a hint."""
    if found is None:
        st.info("Choose the methods and scales and press **Sweep**." if scales else "Choose at least one scale.")
        return
    made_for, sweep = found
    if made_for != key:
        st.caption("These results are for other settings than those above; press **Sweep** for these.")
    many = "scales" if len(made_for.plan) == 1 else f"scales of the {len(made_for.plan)} series"
    if stopped := sweep.tally.stopped(many, "any scale was measured", "press **Sweep** to measure them all"):
        st.warning(stopped)
    if sweep.series:
        _show(sweep, key=made_for)


def _show(sweep: Sweep, live: str = "", key: SweepKey | None = None) -> None:
    """The sweep's figures, tables and digits; while it runs (`live`: a suffix for this redraw's element keys),
    without the download."""
    st.plotly_chart(figures.sweep_figure(sweep.series, sweep.real), key=f"gd-sweep-fig{live}")
    st.markdown("**Trade-offs** (each line runs through its series' scales; hover for the scale)")
    st.plotly_chart(figures.trade_figure(sweep.series, sweep.real), key=f"gd-trade-fig{live}")
    rows = pd.DataFrame(figures.sweep_rows(sweep.series, sweep.real))
    st.dataframe(rows, hide_index=True, width="stretch", key=f"gd-sweep-table{live}")
    if not live:
        csv = rows.to_csv(index=False) if key is None else provenance.csv(rows.to_csv(index=False), _record(key))
        st.download_button("Download the table (CSV)", csv, "guidance_sweep.csv", "text/csv", key="gd-csv")
        st.markdown("**Where each series has its lowest FD-LeNet**")
        show_table(figures.best_rows(sweep.series), key="gd-best")
    _grids(sweep)


def _record(key: SweepKey) -> dict:
    """The sweep's settings for its CSV (core/labs/provenance.py): the model, sampler, steps, and each series."""
    settings = SamplerSettings(
        sampler=key.sampler, steps=key.steps, batch=key.n, spread_classes=True, guide=key.guide or None
    )
    series = [provenance.series_part(s.name, s.guidance, s.scales) for s in key.plan]
    study = {"page": STUDY, "source": key.source, "series": series}
    return provenance.record(zoo_model(PIXEL if key.source == "pixel" else LATENT), settings, study=study)


def _grids(sweep: Sweep) -> None:
    st.markdown("**One digit of each class per scale** (the same seeds in every row)")
    cols = st.columns(len(sweep.images))
    for col, (name, by_scale) in zip(cols, sweep.images.items(), strict=True):
        col.caption(name)
        for w, images in sorted(by_scale.items()):
            col.image(image_strip(images.clamp(-1, 1), height=40), caption=f"w = {w:g}")
