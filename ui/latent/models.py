"""Choosing (or training, on the page) the Latent MNIST page's two models: the VAE and the latent denoiser."""

from __future__ import annotations

import streamlit as st

from core.labs.latent import LatentDiffusion
from ui.common.charts import loss_figure
from ui.common.live import job_estimate
from ui.common.widgets import attempt, run_job
from ui.latent import state
from ui.latent.controls import latent_train_settings, vae_settings, vae_source


def pick_vae() -> state.VAEInUse | None:
    """The bundled VAE, or one trained here (its settings, Train and Stop, live progress); None until trained."""
    source = vae_source()
    if source == "trained":
        config = vae_settings()
        fits = job_estimate(lambda: state.vae_job_seconds(config))  # a sentence, before anything starts
        b1, b2, note = st.columns([1, 1, 5])
        clicked = b1.button("Train VAE", type="primary", key="vae-train", disabled=not fits)
        b2.button("Stop", key="vae-stop", help="Keeps the VAE trained so far.")
        note.caption(
            f"An MLP VAE (784-256-256-2, quick on a CPU) on the first {len(state.digits().labels):,} training "
            f"digits ({state.digits().source})."
        )
        live = st.empty(), *(column.empty() for column in st.columns(2))
        if clicked and run_job("VAE training", state.train_vae_live, config, *live) is not None:
            for slot in live:  # the finished VAE is drawn below (replay and loss parts)
                slot.empty()
    vae = attempt(state.vae_in_use, source)  # the bundled one may be missing from a manifest of one's own
    if vae is None and source == "trained":
        st.info("Set the VAE's training above and press **Train VAE**, or use the bundled VAE.")
    return vae


def pick_latent_model(vae: state.VAEInUse) -> LatentDiffusion | None:
    """The bundled latent model (for the bundled VAE), or one trained here on `vae`'s plane; None until trained."""
    which = st.radio(
        "Latent model",
        ["bundled", "trained"] if vae.bundled else ["trained"],
        horizontal=True,
        key=f"ldm-source-{vae.bundled}",
        format_func={"bundled": "Bundled (mnist-latent-cond)", "trained": "Train one here"}.get,
    )
    if not vae.bundled:
        st.caption("The bundled latent model learnt the bundled VAE's plane; for this VAE, train one here.")
    model = attempt(state.bundled_latent) if which == "bundled" else None
    if which == "trained":
        settings = latent_train_settings()
        fits = job_estimate(settings.seconds)
        b1, b2 = st.columns([1, 4])
        clicked = b1.button("Train latent model", type="primary", key="ldm-train", disabled=not fits)
        b2.button("Stop", key="ldm-stop", help="Keeps the model trained so far.")
        progress, chart = st.empty(), st.empty()
        if clicked and run_job("latent training", state.train_latent_live, vae, settings, progress, chart) is None:
            return None
        trainer = state.latent_trainer(vae)
        if trainer is None:
            st.info("Press **Train latent model**: a class-conditional MLP learns this plane in about ten seconds.")
            return None
        chart.plotly_chart(loss_figure(trainer.trainer.metrics), key="ldm-loss")
        done, planned = trainer.trainer.step, trainer.settings.steps
        stopped = f" (stopped before {planned:,}; this is the model so far)" if done < planned else ""
        st.caption(f"**{trainer.name}**: {done:,} steps{stopped} in {trainer.trainer.seconds:.1f} s.")
        model = trainer.model()
    return model
