"""The Guidance page's exact tab: every method on a two-class Gaussian mixture whose densities are known
(core/labs/guidance/exact.py), measured with progress and a Stop, each scale drawn as it is done."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.diffusion.samplers import SAMPLERS
from core.labs import provenance
from core.labs.guidance import exact as ex
from core.labs.guidance.sweep import Series
from core.labs.samplers import SamplerSettings
from ui.common import jobs
from ui.common.live import ProgressBar, Throttle
from ui.common.memo import Memo
from ui.common.widgets import run_job
from ui.guidance import figures
from ui.guidance.controls import cfgpp_note, plan_controls

DEFAULT_METHODS = ["cfg", "rescale", "apg", "cfg++", "auto"]
SIDE = 90  # density grid points a side
STUDY = "Guidance: every method on an exact mixture"  # the page its table's record names (ui/guidance/from_file.py)
SAMPLES = (500, 1000, 2000, 5000)  # the samples-per-scale choices
BLURS = (0.1, 0.25, 0.5, 1.0, 2.0)  # the guide's blur choices
MAX_STEPS = 100


@dataclass(frozen=True)
class ExactKey:
    settings: ex.ExactSettings
    plan: tuple[Series, ...]


@dataclass
class ExactStudy:
    """The rows and samples kept as each (series, scale) is measured (a Stop keeps them)."""

    tally: jobs.Tally
    rows: list[ex.ExactRow] = field(default_factory=list)
    truth: np.ndarray | None = None  # the exact draws of the class
    samples: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)  # (series, scale) -> [n, 2]
    methods: dict[str, str] = field(default_factory=dict)  # series -> its guidance method

    def keep(self, name: str, scale: float, x: torch.Tensor, row: ex.ExactRow) -> None:
        self.rows.append(row)
        if np.isnan(scale):
            self.truth = x.numpy()
        else:
            self.samples[(name, scale)] = x.numpy()

    def series(self) -> dict[str, list[ex.ExactRow]]:
        out: dict[str, list[ex.ExactRow]] = {}
        for r in self.rows[1:]:
            out.setdefault(r.series, []).append(r)
        return out


EXACT = Memo[ExactKey, ExactStudy]("gd-exact")


def exact_tab() -> None:
    st.markdown(
        "Two classes in the plane, each a Gaussian mixture, so every denoiser is exact: the conditional and "
        "unconditional ones, and autoguidance's weaker model, the exact denoiser of the law **blurred** by b "
        "(every class too wide, as an under-trained network's). Class A's fourth component sits inside class B's "
        "region. For each method and scale: the **mean exact log p(x | c)** of the samples (quality), the share "
        f"**off support** (where p(x | c) is below the level that holds {ex.MASS:.0%} of the class: exact draws "
        f"land there {1 - ex.MASS:.0%} of the time), and **coverage** (the share of as many exact draws whose 5-NN "
        "ball holds a sample). Guidance is often read as sampling p(x | c)ʷ p(x)¹⁻ʷ; the last figure draws "
        "that density beside what CFG samples (it does not sample it: Chidambaram et al. 2024)."
    )
    a, b, c, d, e = st.columns([1, 1.4, 1, 1.2, 1])
    label = a.radio("Class", [0, 1], format_func=lambda k: ex.CLASS_NAMES[k], horizontal=True, key="gx-class")
    sampler = b.selectbox(
        "Sampler",
        list(SAMPLERS),
        index=list(SAMPLERS).index("dpmpp_2m"),
        key="gx-sampler",
        format_func=lambda s: SAMPLERS[s].title,
    )
    steps = c.slider("Steps", 2, MAX_STEPS, 32, key="gx-steps")
    n = d.select_slider("Samples per scale", SAMPLES, value=2000, key="gx-n")
    blur = e.select_slider("Guide's blur b", BLURS, value=0.5, key="gx-blur")
    plan = plan_controls("gx", DEFAULT_METHODS)
    cfgpp_note(plan, sampler)
    if plan.problem:
        st.warning(plan.problem)
    settings = ex.ExactSettings(label=int(label), sampler=sampler, steps=int(steps), n=int(n), blur=float(blur))
    key = ExactKey(settings, plan.series)
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Measure", type="primary", key="gx-go", disabled=not plan.series)
    b2.button("Stop", key="gx-stop", help="Keeps the scales measured so far.")
    progress, results = st.empty(), st.empty()
    if clicked:
        run_job("exact guidance study", _start, key, progress, results)
        progress.empty()
    with results.container():
        found = jobs.shown(EXACT)
        if found is None:
            st.info("Choose the methods and press **Measure** (a few seconds).")
            return
        made_for, study = found
        if made_for != key:
            st.caption("These results are for other settings than those above; press **Measure** for these.")
        if stopped := study.tally.stopped("scales", "any scale was measured", "press **Measure** to measure them all"):
            st.warning(stopped)
        if study.rows:
            _show(made_for, study)


def _start(key: ExactKey, progress: Any, results: Any) -> None:
    planned = 1 + sum(len(s.scales) for s in key.plan)
    study = jobs.start(EXACT, key, ExactStudy(jobs.Tally(planned=planned), methods=_methods(key)))
    bar, throttle = ProgressBar(progress), Throttle(1.0)
    bar.show(0.0, f"0 of {planned} scales…")
    for name, scale, x, row in ex.exact_study(ex.two_classes(), key.plan, key.settings):
        if not study.tally.add(partial(study.keep, name, scale, x, row)):
            return
        done = study.tally.done
        bar.show(done / planned, f"{done} of {planned} · {name}" + ("" if np.isnan(scale) else f" at {scale:g}"))
        if throttle.ready():
            with results.container():
                _show(key, study, live=f"-live-{done}")


def _show(key: ExactKey, study: ExactStudy, live: str = "") -> None:
    series, truth = study.series(), study.rows[0]
    if series:
        st.plotly_chart(figures.trade_figure(series, truth, figures.EXACT_TRADES, height=360), key=f"gx-trade{live}")
    table = pd.DataFrame(figures.exact_rows(study.rows))
    st.dataframe(table, hide_index=True, width="stretch", key=f"gx-table{live}")
    if live:
        return
    csv = provenance.csv(table.to_csv(index=False), _record(key))
    st.download_button("Download the table (CSV)", csv, "guidance_exact.csv", key="gx-csv")
    _samples(key, study)


def _record(key: ExactKey) -> dict:
    """The study's settings for its CSV (core/labs/provenance.py): the exact mixture, sampler, steps, class, seed,
    samples, the guide's blur and each series."""
    s = key.settings
    settings = SamplerSettings(
        sampler=s.sampler, steps=s.steps, spacing="karras", seed=s.seed, batch=s.n, label=s.label, clip=False
    )
    study = {
        "page": STUDY,
        "blur": s.blur,
        "series": [provenance.series_part(p.name, p.guidance, p.scales) for p in key.plan],
    }
    model = "two-class Gaussian mixture (core/labs/guidance/exact.two_classes), its exact denoiser"
    return provenance.record(model, settings, study=study)


def _methods(key: ExactKey) -> dict[str, str]:
    return {s.name: s.guidance.method for s in key.plan}


def _samples(key: ExactKey, study: ExactStudy) -> None:
    """The samples of every series at one scale over the exact class density, and the tilted densities."""
    mix, label = ex.two_classes(), key.settings.label
    lo, hi = ex.view_box(mix)
    xs, ys = np.linspace(lo[0], hi[0], SIDE), np.linspace(lo[1], hi[1], SIDE)
    own = ex.class_density(mix, label, lo, hi, SIDE)
    lambda_scaled = {name for name, method in study.methods.items() if method == "cfg++"}
    w_scales = sorted({s for (name, s) in study.samples if name not in lambda_scaled})
    lambdas = sorted({s for (name, s) in study.samples if name in lambda_scaled})
    a, b = st.columns(2)
    w = (
        a.select_slider("Samples at scale w", w_scales, value=_near(w_scales, 3.0), key="gx-show-w")
        if w_scales
        else None
    )
    lam = b.select_slider("CFG++ at λ", lambdas, value=_near(lambdas, 0.6), key="gx-show-lambda") if lambdas else None
    panels = [(f"exact draws of {ex.CLASS_NAMES[label]}", xs, ys, own, study.truth)]
    for (name, s), pts in study.samples.items():
        by_lambda = name in lambda_scaled
        if s == (lam if by_lambda else w):
            panels.append((f"{name}<br>{'λ' if by_lambda else 'w'} = {s:g}", xs, ys, own, pts))
    st.markdown(f"**Samples over the exact density of class {ex.CLASS_NAMES[label]}**")
    st.plotly_chart(figures.density_panels(panels), key="gx-samples")
    if w is None:
        return
    st.markdown(
        f"**The tilted density at w = {w:g}, normalised on the grid, beside what the methods sample.** "
        "CFG's p(x | c)ʷ p(x)¹⁻ʷ; autoguidance's p(x | c)ʷ p_b(x | c)¹⁻ʷ, with p_b its guide's blurred class."
    )
    tilted = ex.tilted_density(mix, label, w, None, lo, hi, SIDE)[2]
    tilts = [("p(x | c)<sup>w</sup> p(x)<sup>1−w</sup>", xs, ys, tilted, None)]
    first = {method: name for name, method in reversed(study.methods.items())}  # each method's first series
    cfg = study.samples.get((first.get("cfg", ""), w))
    if cfg is not None:
        tilts.append((f"CFG at w = {w:g}", xs, ys, tilted, cfg))
    auto = study.samples.get((first.get("auto", ""), w))
    if auto is not None:
        guided = ex.tilted_density(mix, label, w, mix.blurred(key.settings.blur), lo, hi, SIDE)[2]
        tilts.append(("p(x | c)<sup>w</sup> p<sub>b</sub>(x | c)<sup>1−w</sup>", xs, ys, guided, None))
        tilts.append((f"Autoguidance at w = {w:g}", xs, ys, guided, auto))
    st.plotly_chart(figures.density_panels(tilts), key="gx-tilted")


def _near(values: list[float], target: float) -> float:
    return min(values, key=lambda v: abs(v - target))
