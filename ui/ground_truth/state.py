"""The Ground truth page's per-session state and its long jobs (each with a progress bar; a click anywhere,
the page's Stop included, ends the job and keeps what was finished).

Results are stored with the key of the mixture they were made for, so a changed mixture never shows stale
numbers as its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

from core.diffusion.likelihood import bits_per_dim
from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs import ground_truth as gt
from core.labs.latent import encode_means
from core.labs.toy import ToyRun, ToySettings, run_sampler, training_seconds
from core.metrics.kde import kde_log_density
from core.training import budget
from ui.common import cache, session_runs
from ui.common.live import Throttle, training_progress
from ui.ground_truth.mixture import Mixture

ACCURACY, RUN, LIKELIHOOD, LATENT, NEARNESS, STUDY = (
    "gt_accuracy", "gt_run", "gt_likelihood", "gt_latent", "gt_nearness", "gt_study",
)  # fmt: skip
MAX_MODEL_POINTS = gt.MAX_TRAINING_SET  # the memorisation view builds the optimal denoiser of the training set
MEMO_SAMPLES, MEMO_STEPS = 1000, 40  # samples drawn to measure nearness, Heun steps for them
LIKELIHOOD_GRID, HELD_OUT = 40, 2000
LATENT_GRID, LATENT_HELD_OUT = 24, 400
# RK4 steps for a learned model's density. Its time input is interpolated piecewise-linearly between the
# schedule's steps, so the ODE has kinks and more steps help little: against 256 steps, 32 move the toy
# model's mean log density by 3e-3 nats (a few points by up to 0.3), 96 by 1.5e-3 (0.1).
MODEL_ODE_STEPS = 32


def _stored(key: str, mixture: Mixture) -> Any:
    found = st.session_state.get(key)
    return found[1] if found is not None and found[0] == mixture.key else None


# ---- sampler accuracy ------------------------------------------------------------------------------------------


def accuracy(mixture: Mixture) -> gt.AccuracyTable | None:
    return _stored(ACCURACY, mixture)


def measure_accuracy(mixture: Mixture, n_points: int, seed: int, progress_slot: Any) -> gt.AccuracyTable:
    """Every sampler at every NFE; the table is stored after each sampler, so a Stop keeps the rows done."""
    st.session_state.pop(ACCURACY, None)
    total = len(SAMPLERS)
    progress_slot.progress(0.0, text=f"Measuring {total} samplers on {n_points:,} points…")

    def on_row(table: gt.AccuracyTable) -> None:
        st.session_state[ACCURACY] = (mixture.key, table)
        done = len(table.rows)
        progress_slot.progress(done / total, text=f"{done} of {total} samplers · {table.seconds:.1f} s")

    return gt.accuracy(mixture.mix, n_points, seed, on_row=on_row)


# ---- the model learnt from the mixture -------------------------------------------------------------------------


def model(mixture: Mixture) -> ToyRun | None:
    return _stored(RUN, mixture)


def model_seconds(n_points: int, steps: int) -> float:
    del n_points  # a step costs the same whatever the data set's size (one batch)
    return training_seconds(ToySettings(), 2, steps)


def train_model(mixture: Mixture, n_points: int, steps: int, seed: int, progress_slot: Any, chart_slot: Any) -> ToyRun:
    """A fresh toy-lab model (default settings) on n_points drawn from the mixture; it joins the session's runs."""
    if not 16 <= n_points <= MAX_MODEL_POINTS:
        raise BadInputError(f"Train on 16 to {MAX_MODEL_POINTS:,} points.")
    budget.check(model_seconds(n_points, steps), "training")  # refused before it replaces the model there is
    run = ToyRun(gt.mixture_cloud(mixture.mix, n_points, seed), ToySettings(seed=seed), session_runs.next_name("truth"))
    session_runs.add(run.log)
    st.session_state[RUN] = (mixture.key, run)
    for key in (LIKELIHOOD, NEARNESS):
        st.session_state.pop(key, None)
    run.train(steps, training_progress(progress_slot, chart_slot, 0, steps, "gt"), every=10)
    return run


# ---- likelihood ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LikelihoodMaps:
    xs: np.ndarray
    ys: np.ndarray
    panels: list[tuple[str, np.ndarray]]  # (title, [size, size] log density)
    rows: list[dict[str, object]]  # held-out negative log-likelihoods
    ode_gap: float  # max |exact ODE - closed form| over the held-out points, nats
    grid_gap: float  # the same over the grid


def _progress(slot: Any, what: str, done: float, share: float) -> Any:
    throttle = Throttle(0.3)

    def on_step(k: int, steps: int) -> None:
        if throttle.ready(k == steps):
            slot.progress(min(1.0, done + share * k / steps), text=f"{what}: step {k} of {steps}")

    return on_step


def _nll_row(what: str, log_p: torch.Tensor, truth: torch.Tensor | None = None) -> dict[str, object]:
    """The mean negative log-likelihood of held-out points (nats, with its standard error, and bits per dim),
    and, against `truth` on the same points, the mean gap with the standard error of the paired difference."""
    nll = -float(log_p.mean())
    se = float(log_p.std()) / np.sqrt(len(log_p))
    row: dict[str, object] = {"Density": what, "NLL (nats)": round(nll, 4), "± SE": round(se, 4),
                              "bits / dim": round(bits_per_dim(nll, 2), 4)}  # fmt: skip
    row["NLL gap to the truth (paired)"] = "-"
    if truth is not None:
        gap = truth - log_p  # > 0: the density gives the held-out points less than the truth does
        row["NLL gap to the truth (paired)"] = f"{float(gap.mean()):+.4f} ± {float(gap.std()) / np.sqrt(len(gap)):.4f}"
    return row


def likelihood(mixture: Mixture) -> LikelihoodMaps | None:
    found = _stored(LIKELIHOOD, mixture)
    run = model(mixture)
    # Made for another state of the model (trained further since): stale.
    return found[1] if found is not None and run is not None and found[0] == (run.name, run.step) else None


def compute_likelihood(mixture: Mixture, run: ToyRun, progress_slot: Any) -> LikelihoodMaps:
    """The exact mixture's log density in closed form and by the ODE with its exact denoiser, and the model's by
    its ODE, on a grid over the mixture and on held-out draws."""
    mix = mixture.mix
    held, _ = mix.sample(HELD_OUT, torch.Generator().manual_seed(12_345))
    on_step = _progress(progress_slot, "The model's ODE", 0.1, 0.9)
    model_title = f"ODE, {run.name} ({run.step:,} steps)"
    lo, hi = gt.view_box(mix)
    xs, ys, found = gt.density_maps(
        {
            "Closed form": lambda x: mix.log_prob(x, gt.SIGMA_MIN),
            "ODE, exact denoiser": lambda x: gt.exact_log_density(mix, x)[0],
            model_title: lambda x: gt.model_log_density(run, x.float(), MODEL_ODE_STEPS, on_step),
        },
        lo.tolist(),
        hi.tolist(),
        LIKELIHOOD_GRID,
        held,
    )
    (closed_map, closed), (ode_map, ode), (_, learned) = found.values()
    model_blur = run.schedule.sigma_min * run.standardizer.scale  # where the model's ODE starts, in data units
    maps = LikelihoodMaps(
        xs=xs,
        ys=ys,
        panels=[(title, value[0]) for title, value in found.items()],
        rows=[
            _nll_row("Closed form (the truth)", closed),
            _nll_row("ODE with the exact denoiser", ode, closed),
            _nll_row(
                f"Model {run.name}, {len(run.cloud.points):,} training points, {run.step:,} steps",
                learned,
                mix.log_prob(held, model_blur),
            ),
        ],
        ode_gap=float((ode - closed).abs().max()),
        grid_gap=float(np.abs(ode_map - closed_map).max()),
    )
    st.session_state[LIKELIHOOD] = (mixture.key, ((run.name, run.step), maps))
    return maps


def latent_likelihood() -> LikelihoodMaps | None:
    return st.session_state.get(LATENT)


def compute_latent_likelihood(progress_slot: Any) -> LikelihoodMaps:
    """The bundled latent MNIST model's log density over the VAE plane (its unconditional half) beside a kernel
    density estimate of the training digits' latents, and the held-out NLL of test digits under both."""
    from ui.latent import state as latent_state  # the Latent MNIST page's cached models and latents

    vae = latent_state.vae_in_use("bundled")
    latent_model = latent_state.bundled_latent()
    train = latent_state.latents(vae)
    test = encode_means(vae.vae, cache.image_set("mnist", "test", LATENT_HELD_OUT).images)
    lo, hi = np.quantile(train, 0.005, axis=0), np.quantile(train, 0.995, axis=0)
    on_step = _progress(progress_slot, "The latent model's ODE", 0.0, 1.0)
    xs, ys, found = gt.density_maps(
        {
            "KDE of the training latents": lambda z: torch.from_numpy(kde_log_density(train, z.numpy())),
            f"ODE, {latent_model.name}": lambda z: gt.latent_log_density(latent_model, z, MODEL_ODE_STEPS, on_step),
        },
        lo.tolist(),
        hi.tolist(),
        LATENT_GRID,
        torch.from_numpy(test),
    )
    (_, kde), (_, learned) = found.values()
    maps = LikelihoodMaps(
        xs=xs,
        ys=ys,
        panels=[(title, value[0]) for title, value in found.items()],
        rows=[
            _nll_row(f"KDE of {len(train):,} training latents (Scott)", kde),
            _nll_row(f"{latent_model.name}: its unconditional half, by its ODE", learned),
        ],
        ode_gap=float("nan"),
        grid_gap=float("nan"),
    )
    st.session_state[LATENT] = maps
    return maps


# ---- memorisation --------------------------------------------------------------------------------------------------


def nearness(mixture: Mixture) -> dict[str, gt.Nearness] | None:
    found = _stored(NEARNESS, mixture)
    run = model(mixture)
    return found[1] if found is not None and run is not None and found[0] == (run.name, run.step) else None


def compute_nearness(mixture: Mixture, run: ToyRun) -> dict[str, gt.Nearness]:
    """Samples of the optimal denoiser for the model's training set, of the model, and fresh draws: how near
    each lands to a training point."""
    train = run.cloud.points.double()
    optimal = gt.optimal_samples(train, MEMO_SAMPLES, seed=7, steps=MEMO_STEPS)
    learned = run_sampler(run, "heun", MEMO_STEPS, MEMO_SAMPLES, seed=7).samples
    fresh, _ = mixture.mix.sample(MEMO_SAMPLES, torch.Generator().manual_seed(8))
    curves = {
        "Optimal denoiser of the training set": gt.nearness(optimal, train),
        f"Model {run.name}": gt.nearness(learned, train),
        "Fresh draws from the mixture": gt.nearness(fresh, train),
    }
    st.session_state[NEARNESS] = (mixture.key, ((run.name, run.step), curves))
    return curves


@dataclass
class Study:
    rows: list[dict[str, float]]
    baseline: float  # the copy share of fresh draws (against the largest set)
    planned: int  # measurements planned


def study(mixture: Mixture) -> Study | None:
    return _stored(STUDY, mixture)


def study_seconds(sizes: list[int], steps: int) -> float:
    return len(sizes) * training_seconds(ToySettings(), 2, steps)


def run_study(mixture: Mixture, sizes: list[int], steps: int, checkpoints: int, progress_slot: Any) -> Study:
    """A toy model per training-set size, each trained `steps` steps; at `checkpoints` points along the way,
    the share of 500 Heun samples that copy a training point. Stored after each measurement."""
    if not sizes:
        raise BadInputError("Choose at least one training-set size.")
    budget.check(study_seconds(sizes, steps), "training")
    fresh, _ = mixture.mix.sample(2000, torch.Generator().manual_seed(9))
    biggest = gt.mixture_cloud(mixture.mix, max(sizes), seed=0).points
    result = Study(rows=[], baseline=gt.nearness(fresh, biggest).copied, planned=len(sizes) * checkpoints)
    st.session_state[STUDY] = (mixture.key, result)
    chunk = max(1, steps // checkpoints)
    for n in sorted(sizes):
        cloud = gt.mixture_cloud(mixture.mix, n, seed=0)
        run = ToyRun(cloud, ToySettings(seed=0))
        for _ in range(checkpoints):
            run.train(chunk)
            samples = run_sampler(run, "heun", 30, 500, seed=1).samples
            result.rows.append({"points": n, "step": run.step, "copied": gt.nearness(samples, cloud.points).copied})
            done = len(result.rows)
            progress_slot.progress(done / result.planned, text=f"{done} of {result.planned} measurements")
    return result
