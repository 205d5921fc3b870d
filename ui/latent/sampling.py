"""Generating in the latent plane: paths drawn over the density map and decoded strips as the sampler
runs, then the finished points over the class densities and the classifier's reading of each digit
(`show_result`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.data.images import uint8_to_tensor
from core.diffusion.samplers import SAMPLERS
from core.labs.latent import LatentDiffusion, LatentPaths, decode_points, sample_paths
from core.metrics.images import class_probabilities
from core.metrics.kde import Densities
from core.models.vae import VAE
from ui.common import cache
from ui.common.live import Throttle
from ui.common.memo import Memo
from ui.common.tables import show_table
from ui.latent.controls import LatentSampling
from ui.latent.figures import final_points_figure, paths_figure, strips_image

MAX_COLUMNS = 10
LIVE_INTERVAL_S = 0.15  # at most one redraw of the paths and strips per 0.15 s
CLASSIFIER = "mnist-lenet"


@dataclass(frozen=True, eq=False, kw_only=True)
class LatentResult:
    paths: LatentPaths
    strips: np.ndarray  # uint8 image: a row per sample, a column per shown step
    columns: list[float]  # sigma of each strip column
    predicted: np.ndarray  # [n] classifier labels of the decoded samples
    confidence: np.ndarray  # [n] its probability for that label


def strip_digits(vae: VAE, path: np.ndarray, columns: int = MAX_COLUMNS) -> tuple[np.ndarray, list[int]]:
    """Decoded digits [n, k, 28, 28] at k frames of a path [F, n, 2], evenly spread, first and last included."""
    idx = sorted(set(np.linspace(0, len(path) - 1, min(columns, len(path))).round().astype(int).tolist()))
    digits = decode_points(vae, path[idx].reshape(-1, 2))
    return digits.reshape(len(idx), path.shape[1], 28, 28).transpose(1, 0, 2, 3), idx


# The last samples, for the sampling settings they were made with; dropped when a VAE or a latent model is
# trained (ui/latent/state.py), since they came from the models in use before.
RESULT: Memo[LatentSampling, LatentResult] = Memo("latent-result")


def generate(model: LatentDiffusion, vae: VAE, choice: LatentSampling, grid: Densities, key: str) -> LatentResult:
    """Sample, drawing the paths and strips live; the finished LatentResult is kept in the session."""
    progress = st.progress(0.0, text="Sampling…")
    left, right = st.columns([3, 2])
    path_slot, strip_slot = left.empty(), right.empty()
    throttle = Throttle(LIVE_INTERVAL_S)

    def on_frame(index: int, path: torch.Tensor, finished: bool) -> None:
        if not throttle.ready(finished):
            return
        p = path.numpy()
        progress.progress(min(1.0, index / choice.steps), text=f"Step {min(index + 1, choice.steps)} of {choice.steps}")
        path_slot.plotly_chart(paths_figure(grid, p), key=f"{key}-live-path-{index}")
        digits, _ = strip_digits(vae, p)
        strip_slot.image(strips_image(digits), caption="Decoded positions so far", clamp=True)

    paths = sample_paths(
        model, choice.sampler, choice.steps, choice.n, choice.seed, choice.label, choice.scale, on_frame=on_frame
    )
    progress.empty()
    path_slot.empty()
    strip_slot.empty()
    digits, idx = strip_digits(vae, paths.path.numpy())
    probs = class_probabilities(cache.zoo_model(CLASSIFIER).module, uint8_to_tensor(digits[:, -1, None]))
    result = LatentResult(
        paths=paths,
        strips=strips_image(digits),
        columns=[paths.sigmas[i] if i < len(paths.sigmas) else 0.0 for i in idx],
        predicted=probs.argmax(1),
        confidence=probs.max(1),
    )
    return RESULT.put(choice, result)


def last_result() -> tuple[LatentSampling, LatentResult] | None:
    """The last samples and the settings they were made with (None before any)."""
    return RESULT.latest()


def readout(result: LatentResult) -> pd.DataFrame:
    """One row per sample: requested class, the classifier's label and its confidence."""
    wanted = result.paths.label["class"]
    return pd.DataFrame(
        {
            "Sample": np.arange(1, len(result.predicted) + 1),
            "Requested": "none" if wanted is None else str(wanted),
            "Classifier reads": result.predicted.astype(int),
            "Confidence": np.round(result.confidence, 3),
        }
    )


def show_result(made_for: LatentSampling, result: LatentResult, grid: Densities, choice: LatentSampling) -> None:
    """The paths and decoded strips, then the finished points and what the classifier reads in them (marked
    when the settings on the page have changed since they were made for `made_for`)."""
    if made_for != choice:
        st.info("From earlier settings: press **Generate** for the current ones.")
    left, right = st.columns([3, 2])
    left.plotly_chart(paths_figure(grid, result.paths.path.numpy()), key="ldm-paths")
    right.image(result.strips, clamp=True, width="stretch")
    right.caption(
        "A strip per sample, left (noise) to right (finished): the digit its current point decodes to, "
        f"at σ = {', '.join(f'{s:.3g}' for s in result.columns)}."
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(final_points_figure(grid, result.paths.samples.numpy(), result.predicted), key="ldm-final")
    wanted = result.paths.label["class"]
    if wanted is not None:
        right.metric("Read as the requested class", f"{float((result.predicted == wanted).mean()):.0%}")
    show_table(  # short headers: the four columns fit the narrow column without a scroll bar
        readout(result),
        right,
        key="ldm-readout",
        column_config={"Sample": st.column_config.NumberColumn("#"), "Classifier reads": "Read as"},
    )
    lab = result.paths.label
    right.caption(
        f"{SAMPLERS[lab['sampler']].title}, {lab['steps']} steps, seed {lab['seed']}, "
        f"{result.paths.seconds * 1000:.0f} ms. "
        "Labels and confidences from the bundled LeNet classifier."
    )
