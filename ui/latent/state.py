"""The Latent MNIST page's models and per-session state, and its live-training drivers.

The bundled VAE and latent model are shared zoo resources (read-only, in st.cache_resource). A VAE or latent
model trained on the page lives in st.session_state: it belongs to that session alone. Training runs in the
page's script with throttled redraws; Stop (or any click) interrupts it between steps, and what was trained
so far is kept.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch
from safetensors.torch import load_file

from core.labs.latent import (
    LatentDiffusion,
    LatentTrainer,
    LatentTrainSettings,
    encode_means,
    latent_diffusion,
    manifold_axes,
    vae_training_seconds,
)
from core.metrics.kde import Densities, kde_densities
from core.models.init import seeded
from core.models.vae import MLPVAE, VAE
from core.runs.ours import read_metrics
from core.runs.record import Run
from core.training import budget
from core.training.vae import LatentSnapshots, VAETrainConfig, train_vae
from ui.common import cache, session_runs
from ui.common.live import Throttle, training_progress
from ui.common.memo import Memo
from ui.latent import sampling
from ui.latent.controls import APP_VAE_MODEL
from ui.latent.figures import latent_scatter, loss_parts_figure, robust_ranges

VAE_NAME, LATENT_NAME = "mnist-vae-2d", "mnist-latent-cond"
MAX_DIGITS, SNAPSHOT_DIGITS = cache.LATENT_DIGITS, 1000
VAE_KEY = "latent_vae"  # this session's trained VAE (whatever its settings: the page shows the one it has)
LATENT = Memo[str, LatentTrainer]("latent-model")  # this session's latent model, by the VAE whose plane it learnt


@dataclass(eq=False)
class VAEInUse:
    """A VAE with what the page shows of it: training records, latent snapshots, and encoded digits."""

    name: str
    vae: VAE
    records: list[dict[str, Any]]
    snapshots: LatentSnapshots
    bundled: bool
    latents: np.ndarray | None = None  # [N, 2] encoded training digits (filled on first use)
    log: Run | None = field(default=None)  # the run, for VAEs trained here
    planned_steps: int = 0  # for VAEs trained here: the steps asked for (fewer were done if it was stopped)

    def stopped_note(self) -> str:
        """' (stopped at step 280 of 1,050: the VAE so far)' for a VAE trained here and stopped early, else ''."""
        done = int(self.records[-1]["step"]) if self.records else 0
        if self.bundled or done >= self.planned_steps:
            return ""
        return f" (stopped at step {done:,} of {self.planned_steps:,}: the VAE so far)"

    def snapshot_means(self) -> np.ndarray:
        """The saved latent means of the fixed digits, [S, N, 2]."""
        return np.stack([m.double().numpy() for m in self.snapshots.means])


def digits():
    """The MNIST training digits in use (at most MAX_DIGITS): uint8 images [N, 1, 28, 28] and labels."""
    return cache.image_set("mnist", "train", MAX_DIGITS)


@st.cache_resource(show_spinner="Loading the bundled VAE…", max_entries=2, ttl=cache.CACHE_TTL)
def _bundled_vae(manifest: str) -> VAEInUse:
    loaded = cache.zoo_model(VAE_NAME)
    snaps = load_file(str(loaded.files["latent_snapshots.safetensors"]))
    snapshots = LatentSnapshots(
        steps=snaps["steps"].tolist(), means=list(snaps["means"].float()), labels=snaps["labels"]
    )
    records, _ = read_metrics(Path(loaded.entry.run or "") / "metrics.jsonl") if loaded.entry.run else ([], [])
    vae = VAEInUse(loaded.entry.title, loaded.module, [r for r in records if "kl" in r], snapshots, bundled=True)
    vae.latents = cache.training_latents(VAE_NAME, MAX_DIGITS)  # encoded once for this page and Ground truth
    return vae


def vae_in_use(source: str) -> VAEInUse | None:
    """The bundled VAE, or this session's trained one (None until it has been trained)."""
    return _bundled_vae(str(cache.manifest_path())) if source == "bundled" else st.session_state.get(VAE_KEY)


def latents(vae: VAEInUse) -> np.ndarray:
    if vae.latents is None or len(vae.latents) != len(digits().labels):
        vae.latents = encode_means(vae.vae, digits().images)
    return vae.latents


def manifold_grid(points: np.ndarray, n: int, spacing: str) -> tuple[np.ndarray, np.ndarray]:
    """The manifold's coordinates: the prior's quantiles, or evenly over 99.5% of the encoded digits."""
    extent = tuple(np.array(r) for r in zip(*robust_ranges(points, pad=0.0), strict=True))
    return manifold_axes(n, spacing, extent)


@st.cache_data(show_spinner="Estimating densities…", max_entries=16, ttl=cache.CACHE_TTL)
def densities(points: np.ndarray, labels: np.ndarray, bandwidth: str | float, size: int) -> Densities:
    return kde_densities(points, labels, bandwidth, size)


@functools.cache
def _app_vae_parameters() -> int:
    return budget.count_parameters(seeded(0, MLPVAE, **APP_VAE_MODEL))


def vae_job_seconds(config: VAETrainConfig) -> float:
    """About how long the page's VAE trains at `config` on the digits in use, on this server."""
    return vae_training_seconds(config, len(digits().labels), _app_vae_parameters())


def train_vae_live(config: VAETrainConfig, progress, loss_slot, scatter_slot) -> VAEInUse:
    """A fresh VAE trained on the digits in use, drawn as it learns (at most once a second: each redraw costs
    the browser, on the same machine, time the training needs); kept in the session even if stopped. Refused
    (BadInputError) before anything changes when it would be over the server's limit per job."""
    budget.check(vae_job_seconds(config), "training")
    data = digits()
    x = torch.tensor(data.images, dtype=torch.float32) / 255
    labels = torch.tensor(data.labels[:SNAPSHOT_DIGITS])
    name = session_runs.next_name("vae")
    records: list[dict[str, Any]] = []
    config_log = {"kind": "vae", "model": {"architecture": "mlp-vae", **APP_VAE_MODEL}, "train": config.to_dict()}
    log = Run(name=name, source="this session", config=config_log | {"data": data.source}, metrics=records)
    run = st.session_state[VAE_KEY] = VAEInUse(
        name=f"{name} (trained here)",
        vae=seeded(config.seed, MLPVAE, **APP_VAE_MODEL),
        records=records,
        snapshots=LatentSnapshots(steps=[], means=[], labels=labels),
        bundled=False,
        log=log,
    )
    LATENT.clear()  # a latent model belongs to the VAE whose latents it learnt
    sampling.RESULT.clear()  # samples of the models in use before
    session_runs.add(log)
    total = run.planned_steps = config.total_steps(len(x))
    throttle, snap_labels = Throttle(1.0), labels.numpy()

    def update(rec: dict[str, float], live: LatentSnapshots) -> None:
        records.append(rec)
        run.snapshots = live
        if not throttle.ready(final=rec["step"] >= total):
            return
        progress.progress(
            min(1.0, rec["step"] / total),
            text=f"Step {rec['step']:,} of {total:,} · "
            f"reconstruction {rec['reconstruction']:.1f} · KL {rec['kl']:.2f} nats",
        )
        loss_slot.plotly_chart(loss_parts_figure(records), key=f"vae-loss-live-{rec['step']}")
        points = live.means[-1].double().numpy()
        title = f"Latent means of {len(points):,} fixed digits, step {live.steps[-1]}"
        scatter_slot.plotly_chart(latent_scatter(points, snap_labels, title), key=f"vae-scatter-live-{rec['step']}")

    _, run.snapshots = train_vae(run.vae, x, config, x[:SNAPSHOT_DIGITS], labels, update)
    run.latents = None
    return run


def bundled_latent() -> LatentDiffusion:
    return _bundled_latent(str(cache.manifest_path()))


@st.cache_resource(show_spinner="Loading the bundled latent model…", max_entries=2, ttl=cache.CACHE_TTL)
def _bundled_latent(manifest: str) -> LatentDiffusion:
    return latent_diffusion(cache.zoo_model(LATENT_NAME))


def latent_trainer(vae: VAEInUse) -> LatentTrainer | None:
    """This session's latent model, if it was trained on `vae`'s latents."""
    return LATENT.get(vae.name)


def train_latent_live(vae: VAEInUse, settings: LatentTrainSettings, progress, chart) -> LatentTrainer:
    """A fresh latent model for `vae`'s plane, with a progress bar and loss chart (at most once a second)."""
    trainer = LatentTrainer(latents(vae), digits().labels, settings, session_runs.next_name("latent"), vae=vae.name)
    LATENT.put(vae.name, trainer)
    sampling.RESULT.clear()  # samples of the models in use before
    session_runs.add(trainer.log)
    trainer.train(training_progress(progress, chart, 0, settings.steps, "latent", 1.0, 1.0))
    return trainer
