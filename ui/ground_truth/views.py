"""The Ground truth page's four tabs.

The probe is a fragment (its widgets rerun only the tab). The tabs with long jobs are not: a click inside a
fragment waits until the fragment's run is over, so their Stop would stop nothing; in the page's own run a
click ends the job at its next redraw, and the next run shows what was finished."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import accuracy, likelihood, memorisation, mixtures, probe
from core.labs.toy import ToyRun
from ui.common import jobs
from ui.common.charts import loss_figure
from ui.common.live import job_estimate
from ui.common.widgets import attempt, run_job
from ui.ground_truth import figures, state
from ui.ground_truth.mixture import Mixture

PROBE_SIGMAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
PROBE_DEFAULT = ("euler", "heun", "dpmpp_2m", "euler_ancestral")
STUDY_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2000)


def _rows_height(rows: list) -> int:
    """A data frame's height in pixels that shows every row (Streamlit's default scrolls after ten)."""
    return 35 * (len(rows) + 1) + 3


def stop_row(go_label: str, key: str, stop_help: str, disabled: bool = False) -> bool:
    b1, b2, _ = st.columns([1, 1, 5], gap="small")
    clicked = b1.button(go_label, type="primary", key=f"{key}-go", disabled=disabled)
    b2.button("Stop", key=f"{key}-stop", help=stop_help)
    return clicked


def _cut_short(job: str, what: str, button: str) -> None:
    """The sentence for a short job (no Stop of its own) that a click ended before it was done."""
    if jobs.cut_short(job):
        st.info(f"A click ended {what} before they were done; press **{button}** again.", icon=":material/info:")


def accuracy_tab(mixture: Mixture) -> None:
    st.markdown(
        "Every sampler from the **same start points** at NFE 1 to 200 (Karras grid, sigma 80 to 0.002), but the "
        "multistep consistency sampler, which solves no ODE or SDE: it takes the denoiser to be a consistency "
        "model's whole ODE solution. "
        "Deterministic samplers (solid) are measured by the RMS distance to the exact probability-flow ODE end "
        "point (4th-order LMS on 2,000 steps, converged to an RMS below 1e-7). Stochastic samplers (dashed) by their "
        "**strong error**: the distance to the same sampler run with 1,000 evaluations on the **same Brownian path**, "
        "so the measure carries no sampling noise of its own. The legend gives each fitted order (the slope over "
        "NFE ≥ 8; for strong errors up to 64, well below the reference) beside the published order of the "
        "deterministic ones. Strong orders are lower: a path that the coarse run sends to another mode costs a "
        "whole mode's distance."
    )
    a, b, _ = st.columns([1, 1, 3])
    n = a.number_input("Start points", 100, accuracy.MAX_ACCURACY_POINTS, 2000, step=100, key="gt-acc-n")
    seed = b.number_input("Seed", 0, 2**31 - 1, 0, key="gt-acc-seed")
    clicked = stop_row("Measure", "gt-acc", "Keeps the samplers measured so far.")
    progress = st.empty()
    if clicked:
        run_job("ground-truth measure", state.measure_accuracy, mixture, int(n), int(seed), progress)
        progress.empty()
    found = state.accuracy_table(mixture)
    if found is None:
        st.info(
            f"Press Measure: {len(accuracy.INTEGRATORS)} samplers at 9 budgets take about a minute for 2,000 points "
            "(one core)."
        )
        return
    if stopped := found.tally.stopped("samplers", "any sampler was measured", "Measure again for all of them"):
        st.warning(stopped)
    if (table := found.value) is None:
        return
    st.caption(f"{table.n_points:,} start points, measured in {table.seconds:.1f} s.")
    st.plotly_chart(figures.accuracy_figure(table), key="gt-acc-fig")
    rows = figures.accuracy_rows(table)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=_rows_height(rows), key="gt-acc-table")
    st.markdown("**Weak view: the moments every sampler should reproduce**")
    st.caption(
        "The error in a component's mass, mean and variance, each known exactly, with its standard error: for "
        "each, the component furthest from its exact value in standard errors. **Beyond chance** means further "
        "than exact draws would be in 99 of 100 runs (Bonferroni over the components). Exact draws of the same "
        "size show what chance alone gives: at this sample size most samplers' errors are not resolved, which is "
        "why the chart above ranks stochastic samplers by their strong error."
    )
    last = len(table.budgets) - 1
    index = st.select_slider(
        "At NFE budget",
        options=list(range(last + 1)),
        value=last,
        format_func=lambda i: str(table.budgets[i]),
        key="gt-acc-moment-nfe",
    )
    rows = figures.moment_rows(table, index)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=_rows_height(rows), key="gt-mom")


def _clicked(picked: dict | None) -> tuple[Any, Any] | None:
    """The dot last clicked on the pick map (x, y), from the chart's selection state, or None."""
    points = (picked or {}).get("selection", {}).get("points", [])
    return (points[0].get("x"), points[0].get("y")) if points else None


@st.fragment
def probe_tab(mixture: Mixture) -> None:
    st.markdown(
        "Pick a noise level and a start point (click a dot on the map, or draw one from the density there) and "
        "follow each sampler from it, over the **exact density at each noise level**, beside the exact "
        "probability-flow ODE path (white, dotted; the ring is its point at the frame's noise level). All "
        "samplers share one Karras grid of the chosen steps; stochastic ones use the seed's noise."
    )
    a, b, c = st.columns([1.2, 1, 1])
    sigma = a.select_slider("Start noise level sigma", PROBE_SIGMAS, value=2.0, key="gt-probe-sigma")
    steps = b.slider("Steps", 1, 50, 8, key="gt-probe-steps")
    seed = c.number_input("Seed", 0, 2**31 - 1, 0, key="gt-probe-seed")
    names = st.multiselect(
        "Samplers",
        list(SAMPLERS),
        default=list(PROBE_DEFAULT),
        key="gt-probe-samplers",
        format_func=lambda n: SAMPLERS[n].title,
        max_selections=6,
    )
    left, right = st.columns([2, 3])
    with left:
        start = state.probe_start(mixture, float(sigma), _clicked(st.session_state.get("gt-pick")))
        st.plotly_chart(
            figures.pick_figure(mixture.mix, float(sigma), start),
            key="gt-pick",
            on_select="rerun",
            selection_mode="points",
        )
        st.button(
            "Draw a start from the density",
            key="gt-probe-draw",
            on_click=state.draw_probe_start,
            args=(mixture, sigma),
        )
        st.caption(f"Start: ({start[0]:.3f}, {start[1]:.3f}) at sigma = {sigma:g}.")
    if not names:
        right.info("Choose at least one sampler.")
        return
    found = attempt(probe.probe, mixture.mix, start, float(sigma), names, int(steps), int(seed))
    if found is None:
        return
    with right:
        st.plotly_chart(figures.probe_figure(mixture.mix, found), key="gt-probe-fig")
        rows = figures.probe_rows(found)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="gt-probe-table")


def model_tab(mixture: Mixture) -> None:
    st.markdown(
        "A toy-lab model (64x2 MLP, v-prediction, linear schedule) trained on points drawn from this mixture. "
        "Its **log density** comes from its probability-flow ODE with the exact divergence (the trace of the "
        "denoiser's Jacobian by autograd, 32 RK4 steps in log sigma), beside the truth and the same ODE with the "
        "exact denoiser (adaptive steps, each value's error estimated). With few training points it "
        "**memorises**: the optimal denoiser for a finite set puts every sample on a training point."
    )
    a, b, c = st.columns(3)
    n = a.select_slider("Training points", [16, 32, 64, 128, 256, 512, 1024, 2000], value=2000, key="gt-model-n")
    steps = b.select_slider("Steps", [500, 1000, 2000, 3000, 5000, 10_000], value=2000, key="gt-model-steps")
    seed = c.number_input("Seed", 0, 2**31 - 1, 0, key="gt-model-seed")
    fits = job_estimate(lambda: mixtures.model_seconds(int(steps)))
    clicked = stop_row("Train", "gt-model", "Keeps the model trained so far.", disabled=not fits)
    progress, chart = st.empty(), st.empty()
    if clicked:
        run_job("ground-truth training", state.train_model, mixture, int(n), int(steps), int(seed), progress, chart)
    run = state.model(mixture)
    if run is None:
        st.info("Train a model on this mixture to see its density and how near its samples fall to its training set.")
    else:
        _model_views(mixture, run, progress, chart)
    study_section(mixture)


def _model_views(mixture: Mixture, run: ToyRun, progress: Any, chart: Any) -> None:
    if run.trainer.metrics:
        chart.plotly_chart(loss_figure(run.trainer.metrics, height=200), key="gt-model-loss")
    progress.caption(
        f"**{run.name}**: {len(run.cloud.points):,} training points, {run.step:,} steps, {run.trainer.seconds:.1f} s."
    )

    st.markdown("#### Likelihood")
    slot = st.empty()
    _cut_short("gt-like", "the log densities", "Compute log densities")
    if st.button("Compute log densities", key="gt-like-go", help=LIKELIHOOD_HELP):
        with jobs.under_way("gt-like"):
            run_job("likelihoods", state.compute_likelihood, mixture, run, slot)
        slot.empty()
    maps = state.likelihood_maps(mixture)
    if maps is not None:
        st.plotly_chart(figures.log_density_panels(maps.panels, maps.xs, maps.ys), key="gt-like-fig")
        rows = figures.nll_rows(maps.nlls)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="gt-like-table")
        st.caption(_exact_ode_note(maps) + _PAIRED_NOTE)

    st.markdown("#### Memorisation")
    _cut_short("gt-memo", "the samples and their distances", "Sample and measure")
    if st.button("Sample and measure", key="gt-memo-go", help="1,000 samples from each, Heun 40 steps."):
        with jobs.under_way("gt-memo"):
            run_job("memorisation", state.compute_nearness, mixture, run)
    curves = state.nearness_curves(mixture)
    if curves is not None:
        st.plotly_chart(figures.nearness_figure(curves), key="gt-memo-fig")
        st.caption(
            f"A sample **copies** a training point when it is at most {memorisation.COPY_RATIO:.2g} of the distance to "
            "the next-nearest one. Fresh draws do so by chance (about 1/9 in 2-D); the optimal denoiser always does."
        )


LIKELIHOOD_HELP = (
    "About 2-7 s on one core: 3,600 points through the ODEs, the longer for narrow blobs, whose far tails the exact "
    "ODE crosses in small steps."
)
_PAIRED_NOTE = (
    " The gap is paired (the same points): the model is compared with the truth blurred by its own smallest noise "
    "level, where its ODE starts."
)


def _exact_ode_note(maps: likelihood.LikelihoodMaps) -> str:
    """What the exact ODE's panel shows: how close it came to the closed form, and which of its values are marked."""
    said = (
        f"Held-out: {likelihood.HELD_OUT:,} fresh draws. The ODE with the exact denoiser (adaptive steps, an error "
        f"estimate per point, shown in the hover) matches the closed form to {maps.ode_gap:.1e} nats at worst on "
        f"them and {maps.grid_gap:.1e} over the grid."
    )
    if not maps.marked:
        return said + f" Every value's estimated error is within {likelihood.TRUSTED:g} nats."
    capped = f", {maps.capped:,} of them out of calls before they met the tolerance" if maps.capped else ""
    return said + (
        f" **{maps.marked:,} of {maps.points:,} points** have an estimated error over {likelihood.TRUSTED:g} nats"
        f"{capped} (up to {maps.worst_error:.1e}; grid cells crossed on the map): far in the tails of narrow blobs "
        f"the path is stiff at small sigma. The others match the closed form to {maps.unmarked_gap:.1e} nats."
    )


def study_section(mixture: Mixture) -> None:
    st.markdown("#### Memorisation over training-set size and training time")
    st.caption(
        "A fresh model per size (same settings, seed 0), trained in steps; after each, the share of 500 Heun "
        "samples that copy one of its training points."
    )
    a, b, c = st.columns([2, 1, 1])
    sizes = a.multiselect("Training-set sizes", STUDY_SIZES, default=[16, 64, 256, 1024], key="gt-study-sizes")
    steps = b.select_slider("Steps each", [500, 1000, 2000, 4000, 8000], value=2000, key="gt-study-steps")
    checkpoints = c.slider("Measurements each", 2, 8, 4, key="gt-study-checks")
    fits = job_estimate(lambda: memorisation.study_seconds(list(sizes), int(steps)))
    clicked = stop_row("Run the study", "gt-study", "Keeps the measurements made so far.", disabled=not fits)
    slot = st.empty()
    if clicked:
        run_job("memorisation study", state.run_study, mixture, list(sizes), int(steps), int(checkpoints), slot)
        slot.empty()
    kept = state.study(mixture)
    if kept is None:
        return
    again = "run the study again for all of them"
    if stopped := kept.tally.stopped("measurements", "the first measurement was made", again):
        st.warning(stopped)
    if kept.value is not None and kept.value.rows:
        st.plotly_chart(figures.study_figure(kept.value.rows, kept.value.baseline), key="gt-study-fig")


def latent_tab() -> None:
    st.markdown(
        "The bundled latent MNIST model (the Latent MNIST page's) gives a density over the VAE's 2-D plane by the "
        "same ODE. There is no closed form here: the reference is a kernel density estimate of the training "
        "digits' latents, and the score is the NLL of held-out test digits."
    )
    slot = st.empty()
    _cut_short("gt-latent", "the latent log densities", "Compute")
    if st.button("Compute", key="gt-latent-go", help="About 5 s (10 s on a cold server): 976 latents through the ODE."):
        with jobs.under_way("gt-latent"):
            run_job("latent likelihoods", state.compute_latent_likelihood, slot)
        slot.empty()
    maps = state.latent_maps()
    if maps is not None:
        st.plotly_chart(figures.log_density_panels(maps.panels, maps.xs, maps.ys), key="gt-latent-fig")
        rows = figures.nll_rows(maps.nlls)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="gt-latent-table")
        st.caption(
            f"Held-out: {likelihood.LATENT_HELD_OUT} test digits encoded by the bundled VAE (their latent means)."
        )
