"""The Ground truth page's per-session state and the drivers of its long jobs (each with a progress bar; a click
anywhere, the page's Stop included, ends the job and keeps what was finished, through a tally where the job has
rows: ui/common/jobs.py). The experiments themselves are
in core/labs/ground_truth/.

Every result is kept in a memo (ui/common/memo.py) under the key of the mixture it was made for and, where it
depends on the model, the model's name and training step: a changed mixture, a new model or one trained further
never shows stale numbers as its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import streamlit as st

from core.errors import BadInputError
from core.labs.ground_truth import accuracy, grids, likelihood, memorisation, mixtures, probe
from core.labs.latent import encode_means
from core.labs.toy import ToyRun, ToySettings
from core.training import budget
from ui.common import cache, jobs, session_runs
from ui.common.live import ProgressBar, training_progress
from ui.common.memo import Memo
from ui.ground_truth.mixture import Mixture

MAX_MODEL_POINTS = memorisation.MAX_TRAINING_SET  # the memorisation view builds the training set's optimal denoiser
LATENT_MODEL, LATENT_VAE = "mnist-latent-cond", "mnist-vae-2d"  # the bundled models (the Latent MNIST page's)


@dataclass(frozen=True)
class ForMixture:
    mixture: str  # Mixture.key: the law the result was made for


@dataclass(frozen=True)
class ForModel:
    mixture: str
    model: str  # the model's run name
    step: int  # its training step then (trained further since, the result is stale)

    @classmethod
    def of(cls, mixture: Mixture, run: ToyRun) -> ForModel:
        return cls(mixture.key, run.name, run.step)


@dataclass(frozen=True)
class ForLatentModel:
    model: str
    vae: str


@dataclass(frozen=True)
class ProbeKey:
    mixture: str
    sigma: float


@dataclass(frozen=True)
class ProbeStart:
    point: tuple[float, float]
    click: tuple[Any, Any] | None  # the last click on the map taken: its selection stays in the chart, taken once
    draw: int  # the seed of the latest start drawn from the density


ACCURACY = Memo[ForMixture, jobs.Kept[accuracy.AccuracyTable | None]]("gt-accuracy")  # None: no sampler done
GRID_STUDY = Memo[ForMixture, jobs.Kept[grids.GridStudy | None]]("gt-grids")  # None: no curve done
MODEL = Memo[ForMixture, ToyRun]("gt-model")
LIKELIHOOD = Memo[ForModel, likelihood.LikelihoodMaps]("gt-likelihood")
NEARNESS = Memo[ForModel, dict[str, memorisation.Nearness]]("gt-nearness")
STUDY = Memo[ForMixture, jobs.Kept[memorisation.Study | None]]("gt-study")  # None: not started
LATENT = Memo[ForLatentModel, likelihood.LikelihoodMaps]("gt-latent")
PROBE_START = Memo[ProbeKey, ProbeStart]("gt-probe-start")


# ---- sampler accuracy ------------------------------------------------------------------------------------------


def _shown(memo: Memo[ForMixture, jobs.Kept[Any]], mixture: Mixture) -> jobs.Kept[Any] | None:
    """The memo's job record for this mixture, as the page shows it (ui/common/jobs.shown), or None."""
    found = jobs.shown(memo)
    return found[1] if found is not None and found[0] == ForMixture(mixture.key) else None


def accuracy_table(mixture: Mixture) -> jobs.Kept[accuracy.AccuracyTable | None] | None:
    """The samplers measured on this mixture (the table None before the first) and how far the Measure got."""
    return _shown(ACCURACY, mixture)


def _kept_after_each(
    memo: Memo[ForMixture, jobs.Kept[Any]], mixture: Mixture, total: int, unit: str, progress_slot: Any, copy: Callable
) -> Callable[[Any], None]:
    """Start a job of `total` parts for this mixture and return what it reports to after each: the result so far,
    kept as `copy(result)` (so a Stop keeps the parts done), and the progress bar moved on."""
    kept = jobs.start(memo, ForMixture(mixture.key), jobs.Kept(jobs.Tally(planned=total), None))

    def report(found: Any) -> None:
        if kept.tally.add(partial(setattr, kept, "value", copy(found))):
            done = kept.tally.done
            progress_slot.progress(done / total, text=f"{done} of {total} {unit} · {found.seconds:.1f} s")
        else:
            st.stop()  # a later run has shown the job as stopped: this run ends here

    return report


def measure_accuracy(mixture: Mixture, n_points: int, seed: int, progress_slot: Any) -> None:
    """Every sampler of the table at every NFE; it is kept after each sampler, so a Stop keeps the rows done."""
    total = len(accuracy.INTEGRATORS)
    on_row = _kept_after_each(
        ACCURACY, mixture, total, "samplers", progress_slot, lambda table: replace(table, rows=list(table.rows))
    )
    progress_slot.progress(0.0, text=f"Measuring {total} samplers on {n_points:,} points…")
    accuracy.accuracy(mixture.mix, n_points, seed, on_row=on_row)


# ---- step grids ---------------------------------------------------------------------------------------------------


def grid_study(mixture: Mixture) -> jobs.Kept[grids.GridStudy | None] | None:
    """The grids measured on this mixture (None before the first curve) and how far the Measure got."""
    return _shown(GRID_STUDY, mixture)


def measure_grids(mixture: Mixture, progress_slot: Any, **settings: Any) -> None:
    """Each sampler on each grid (core/labs/ground_truth/grids.grid_study with `settings`); the study is kept after
    each curve, so a Stop keeps the curves done."""
    total = len(settings["samplers"]) * (len(settings["grids"]) + (settings.get("typed") is not None))
    on_curve = _kept_after_each(
        GRID_STUDY, mixture, total, "curves", progress_slot, lambda study: replace(study, curves=list(study.curves))
    )
    progress_slot.progress(0.0, text=f"Measuring {total} sampler × grid curves…")
    grids.grid_study(mixture.mix, on_curve=on_curve, **settings)


# ---- the trajectory probe's start --------------------------------------------------------------------------------


def probe_start(mixture: Mixture, sigma: float, click: tuple[Any, Any] | None) -> tuple[float, float]:
    """The probe's start: the last clicked dot, else a draw from the density at sigma (new on request). The click
    taken and the draw's seed carry over to other settings, so an old click is not taken again."""
    key = ProbeKey(mixture.key, sigma)
    found = PROBE_START.get(key)
    if found is None:
        last = PROBE_START.latest()
        taken, draw = (last[1].click, last[1].draw) if last is not None else (None, 0)
        found = PROBE_START.put(key, ProbeStart(_drawn(mixture, sigma, draw), taken, draw))
    if click is not None and click != found.click and None not in click:
        found = PROBE_START.put(key, ProbeStart((float(click[0]), float(click[1])), click, found.draw))
    return found.point


def draw_probe_start(mixture: Mixture, sigma: float) -> None:
    """A new start drawn from the density at sigma (a button's callback: the rerun that follows shows it)."""
    last = PROBE_START.latest()
    taken, draw = (last[1].click, last[1].draw + 1) if last is not None else (None, 1)
    PROBE_START.put(ProbeKey(mixture.key, float(sigma)), ProbeStart(_drawn(mixture, float(sigma), draw), taken, draw))


def _drawn(mixture: Mixture, sigma: float, seed: int) -> tuple[float, float]:
    x, y = probe.start_from_noise(mixture.mix, sigma, seed)
    return x, y


# ---- the model learnt from the mixture -------------------------------------------------------------------------


def model(mixture: Mixture) -> ToyRun | None:
    return MODEL.get(ForMixture(mixture.key))


def train_model(mixture: Mixture, n_points: int, steps: int, seed: int, progress_slot: Any, chart_slot: Any) -> ToyRun:
    """A fresh toy-lab model (default settings) on n_points drawn from the mixture; it joins the session's runs."""
    if not 16 <= n_points <= MAX_MODEL_POINTS:
        raise BadInputError(f"Train on 16 to {MAX_MODEL_POINTS:,} points.")
    budget.check(mixtures.model_seconds(steps), "training")  # refused before it replaces the model there is
    cloud = mixtures.mixture_cloud(mixture.mix, n_points, seed)
    run = ToyRun(cloud, ToySettings(seed=seed), session_runs.next_name("truth"))
    session_runs.add(run.log)
    MODEL.put(ForMixture(mixture.key), run)
    LIKELIHOOD.clear()
    NEARNESS.clear()
    run.train(steps, training_progress(progress_slot, chart_slot, 0, steps, "gt"), every=10)
    return run


# ---- likelihood ---------------------------------------------------------------------------------------------------


def _progress(slot: Any, what: str, done: float, share: float, steps: bool = True) -> Callable[[int, int], None]:
    """An ODE's on_step drawing the bar from `done` to `done + share` of the job: its steps, or (an adaptive ODE,
    whose steps are not known ahead) the share of its way."""
    bar = ProgressBar(slot)

    def on_step(k: int, of: int) -> None:
        bar.show(done + share * k / of, f"{what}: " + (f"step {k} of {of}" if steps else f"{k / of:.0%} of the way"))

    return on_step


def likelihood_maps(mixture: Mixture) -> likelihood.LikelihoodMaps | None:
    run = model(mixture)
    return None if run is None else LIKELIHOOD.get(ForModel.of(mixture, run))


def compute_likelihood(mixture: Mixture, run: ToyRun, progress_slot: Any) -> likelihood.LikelihoodMaps:
    on_exact = _progress(progress_slot, "The exact ODE", 0.0, 0.6, steps=False)
    on_step = _progress(progress_slot, "The model's ODE", 0.6, 0.4)
    maps = likelihood.mixture_likelihood(mixture.mix, run, on_step, on_exact)
    return LIKELIHOOD.put(ForModel.of(mixture, run), maps)


def latent_maps() -> likelihood.LikelihoodMaps | None:
    return LATENT.get(ForLatentModel(LATENT_MODEL, LATENT_VAE))


def compute_latent_likelihood(progress_slot: Any) -> likelihood.LikelihoodMaps:
    """The bundled latent model beside a density estimate of the training digits' latents, on held-out test
    digits encoded by the bundled VAE (their latent means)."""
    plane = cache.latent_plane(LATENT_MODEL, LATENT_VAE)
    train = cache.training_latents(LATENT_VAE)  # the Latent MNIST page's digits: encoded once for both
    test = encode_means(plane.vae, cache.mnist_digits("test", likelihood.LATENT_HELD_OUT)[0])
    on_step = _progress(progress_slot, "The latent model's ODE", 0.0, 1.0)
    maps = likelihood.latent_likelihood(plane.model, train, test, on_step)
    return LATENT.put(ForLatentModel(LATENT_MODEL, LATENT_VAE), maps)


# ---- memorisation --------------------------------------------------------------------------------------------------


def nearness_curves(mixture: Mixture) -> dict[str, memorisation.Nearness] | None:
    run = model(mixture)
    return None if run is None else NEARNESS.get(ForModel.of(mixture, run))


def compute_nearness(mixture: Mixture, run: ToyRun) -> dict[str, memorisation.Nearness]:
    return NEARNESS.put(ForModel.of(mixture, run), memorisation.sample_nearness(mixture.mix, run))


def study(mixture: Mixture) -> jobs.Kept[memorisation.Study | None] | None:
    """The study made on this mixture (None before it started: its baseline comes first) and how far it got."""
    return _shown(STUDY, mixture)


def run_study(mixture: Mixture, sizes: list[int], steps: int, checkpoints: int, progress_slot: Any) -> None:
    """The memorisation study (core/labs/ground_truth/memorisation.py), a copy kept after each measurement: the
    core goes on adding to its own."""
    planned = memorisation.plan_study(sizes, checkpoints)
    budget.check(memorisation.study_seconds(sizes, steps), "training")
    kept = jobs.start(STUDY, ForMixture(mixture.key), jobs.Kept(jobs.Tally(planned=planned), None))

    def on_row(found: memorisation.Study) -> None:
        copy = partial(setattr, kept, "value", replace(found, rows=list(found.rows)))
        if not found.rows:  # the study's start: its baseline, no measurement yet
            kept.tally.keep(copy)
        elif kept.tally.add(copy):
            progress_slot.progress(kept.tally.done / planned, text=f"{kept.tally.done} of {planned} measurements")
        else:
            st.stop()  # a later run has shown the study as stopped: this run ends here

    memorisation.run_study(mixture.mix, sizes, steps, checkpoints, on_row=on_row)
