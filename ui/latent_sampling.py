"""Generating in the latent plane: paths drawn over the density map and decoded strips as the sampler
runs, then the finished points over the class densities and the classifier's reading of each digit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.image_metrics import class_probabilities
from core.kde import DensityGrid
from core.latent_lab import LatentDiffusion, LatentPaths, sample_paths
from core.latent_space import decode_points
from core.models.vae import ConvVAE
from ui import cache
from ui.latent_controls import LatentSampling
from ui.latent_figures import paths_figure, strips_image

MAX_COLUMNS, MAX_LIVE_FRAMES = 10, 30
CLASSIFIER = "mnist-lenet"


@dataclass(frozen=True, eq=False)
class LatentResult:
    paths: LatentPaths
    strips: np.ndarray  # uint8 image: a row per sample, a column per shown step
    columns: list[float]  # sigma of each strip column
    predicted: np.ndarray  # [n] classifier labels of the decoded samples
    confidence: np.ndarray  # [n] its probability for that label


def strip_digits(vae: ConvVAE, path: np.ndarray, columns: int = MAX_COLUMNS) -> tuple[np.ndarray, list[int]]:
    """Decoded digits [n, k, 28, 28] at k frames of a path [F, n, 2], evenly spread, first and last included."""
    idx = sorted(set(np.linspace(0, len(path) - 1, min(columns, len(path))).round().astype(int).tolist()))
    digits = decode_points(vae, path[idx].reshape(-1, 2))
    return digits.reshape(len(idx), path.shape[1], 28, 28).transpose(1, 0, 2, 3), idx


def generate(model: LatentDiffusion, vae: ConvVAE, choice: LatentSampling, grid: DensityGrid, key: str):
    """Sample, drawing the paths and strips live, and return the finished LatentResult."""
    progress = st.progress(0.0, text="Sampling…")
    left, right = st.columns([3, 2])
    path_slot, strip_slot = left.empty(), right.empty()
    every = max(1, -(-choice.steps // MAX_LIVE_FRAMES))

    def on_frame(index: int, path: torch.Tensor) -> None:
        last = index >= choice.steps
        if index % every and not last:
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
    final = torch.from_numpy(digits[:, -1]).float()[:, None] / 127.5 - 1
    probs = class_probabilities(cache.zoo_model(CLASSIFIER).module, final)
    columns = [paths.sigmas[i] if i < len(paths.sigmas) else 0.0 for i in idx]
    return LatentResult(paths, strips_image(digits), columns, probs.argmax(1), probs.max(1))


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
