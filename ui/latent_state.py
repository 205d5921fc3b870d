"""The Latent MNIST page's models and per-session state, and the live-training drivers.

The bundled VAE and latent model are shared zoo resources (read-only). A VAE or latent model trained on
the page lives in st.session_state: it belongs to that session alone. Training runs in the page's script
and updates the UI every ~0.5 s; Stop (or any click) interrupts it between steps, and what was trained so
far is kept.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch
from safetensors.torch import load_file

from core.latent_lab import LatentDiffusion, LatentTrainer, LatentTrainSettings
from core.latent_space import encode_means
from core.models.vae import ConvVAE
from core.runlog import read_metrics
from core.train_vae import LatentSnapshots, VAETrainConfig, train_vae
from core.training import DiffusionTrainer
from ui import cache
from ui.latent_figures import latent_scatter, loss_parts_figure
from ui.toy_figures import loss_figure

VAE_NAME, LATENT_NAME, CLASSIFIER = "mnist-vae-2d", "mnist-latent-cond", "mnist-lenet"
MAX_DIGITS, SNAPSHOT_DIGITS = 5000, 1000
VAE, LATENT, RESULT, COUNT, RUNS = "latent_vae", "latent_trainer", "latent_result", "latent_count", "latent_runs"


@dataclass(eq=False)
class VAEInUse:
    """A VAE with what the page shows of it: training records, latent snapshots, and encoded digits."""

    name: str
    vae: ConvVAE
    records: list[dict[str, Any]]
    snapshots: LatentSnapshots
    bundled: bool
    record: dict[str, Any] = field(default_factory=dict)  # the run-log shape, for trained-here VAEs
    latents: np.ndarray | None = None  # [N, 2] encoded training digits (filled on first use)


def digits():
    """The MNIST training digits in use (at most MAX_DIGITS): uint8 images [N, 1, 28, 28] and labels."""
    return cache.image_set("mnist", "train", MAX_DIGITS)


@st.cache_resource(show_spinner="Loading the bundled VAE…", max_entries=2)
def _bundled_vae(manifest: str) -> VAEInUse:
    loaded = cache.zoo_model(VAE_NAME)
    snaps = load_file(str(loaded.files["latent_snapshots.safetensors"]))
    snapshots = LatentSnapshots(snaps["steps"].tolist(), list(snaps["means"].float()), snaps["labels"])
    records, _ = read_metrics(Path(loaded.entry.run or "") / "metrics.jsonl") if loaded.entry.run else ([], [])
    vae = VAEInUse(loaded.entry.title, loaded.module, [r for r in records if "kl" in r], snapshots, bundled=True)
    vae.latents = encode_means(vae.vae, digits().images)
    return vae


def vae_in_use(source: str) -> VAEInUse | None:
    """The bundled VAE, or this session's trained one (None until it has been trained)."""
    return _bundled_vae(str(cache.manifest_path())) if source == "bundled" else st.session_state.get(VAE)


def latents(vae: VAEInUse) -> np.ndarray:
    if vae.latents is None or len(vae.latents) != len(digits().labels):
        vae.latents = encode_means(vae.vae, digits().images)
    return vae.latents


def _add_record(record: dict[str, Any]) -> None:
    runs = st.session_state.setdefault(RUNS, [])
    runs.append(record)
    del runs[:-20]


def _next_name(kind: str) -> str:
    count = st.session_state[COUNT] = st.session_state.get(COUNT, 0) + 1
    return f"{kind}-{count}"


def train_vae_live(config: VAETrainConfig, progress, loss_slot, scatter_slot, ui_every: float = 0.5) -> VAEInUse:
    """A fresh VAE trained on the digits in use, drawn as it learns; kept in the session even if stopped."""
    data = digits()
    x = torch.tensor(data.images, dtype=torch.float32) / 255
    labels = torch.tensor(data.labels[:SNAPSHOT_DIGITS])
    torch.manual_seed(config.seed)
    name = _next_name("vae")
    records: list[dict[str, Any]] = []
    snaps = LatentSnapshots([], [], labels.clone())
    record = {
        "name": name,
        "kind": "vae",
        "config": {"train": config.to_dict(), "data": data.source},
        "metrics": records,
    }
    run = st.session_state[VAE] = VAEInUse(f"{name} (trained here)", ConvVAE(), records, snaps, False, record)
    st.session_state.pop(LATENT, None)  # a latent model belongs to the VAE whose latents it learnt
    st.session_state.pop(RESULT, None)
    _add_record(record)
    total = config.epochs * max(1, len(x) // config.batch_size)
    last = {"ui": 0.0}
    snap_labels = labels.numpy()

    def update(rec: dict[str, float], live: LatentSnapshots) -> None:
        records.append(rec)
        run.snapshots = live
        now = time.perf_counter()
        if now - last["ui"] < ui_every and rec["step"] < total:
            return
        last["ui"] = now
        progress.progress(
            min(1.0, rec["step"] / total),
            text=f"Step {rec['step']:,} of {total:,} · "
            f"reconstruction {rec['reconstruction']:.1f} · KL {rec['kl']:.2f} nats",
        )
        loss_slot.plotly_chart(loss_parts_figure(records), key=f"vae-loss-live-{rec['step']}")
        points = live.means[-1].double().numpy()
        fig = latent_scatter(
            points, snap_labels, f"Latent means of {len(points):,} fixed digits, step {live.steps[-1]}"
        )
        scatter_slot.plotly_chart(fig, key=f"vae-scatter-live-{rec['step']}")

    _, run.snapshots = train_vae(run.vae, x, config, x[:SNAPSHOT_DIGITS], labels, update)
    run.latents = None
    return run


def bundled_latent() -> LatentDiffusion:
    return _bundled_latent(str(cache.manifest_path()))


@st.cache_resource(show_spinner="Loading the bundled latent model…", max_entries=2)
def _bundled_latent(manifest: str) -> LatentDiffusion:
    loaded = cache.zoo_model(LATENT_NAME)
    stats = json.loads(Path(loaded.files["latent_stats.json"]).read_text(encoding="utf-8"))
    mean, std = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
    return LatentDiffusion(
        loaded.entry.title, loaded.denoiser, loaded.schedule, mean, std, int(loaded.entry.null_label)
    )


def latent_trainer(vae: VAEInUse) -> LatentTrainer | None:
    """This session's latent model, if it was trained on `vae`'s latents."""
    trainer = st.session_state.get(LATENT)
    return trainer if trainer is not None and trainer.record.get("vae") == vae.name else None


def train_latent_live(vae: VAEInUse, settings: LatentTrainSettings, progress, chart, ui_every=0.4) -> LatentTrainer:
    trainer = LatentTrainer(latents(vae), digits().labels, settings, _next_name("latent"))
    trainer.record["vae"] = vae.name
    st.session_state[LATENT] = trainer
    st.session_state.pop(RESULT, None)
    _add_record(trainer.record)
    last, tic = {"ui": 0.0}, time.perf_counter()

    def update(tr: DiffusionTrainer) -> None:
        now = time.perf_counter()
        if now - last["ui"] < ui_every and tr.step < settings.steps:
            return
        last["ui"] = now
        speed = tr.step / max(now - tic, 1e-9)
        progress.progress(
            tr.step / settings.steps,
            text=f"Step {tr.step:,} of {settings.steps:,} · loss {tr.metrics[-1]['loss']:.4f} · {speed:,.0f} steps/s",
        )
        if len(tr.metrics) >= 3:
            chart.plotly_chart(loss_figure(tr.metrics), key=f"latent-loss-live-{tr.step}")

    trainer.train(update)
    return trainer
