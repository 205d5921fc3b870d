"""The Latent MNIST page's settings widgets. Each returns plain values or a settings object."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from core.diffusion.samplers import SAMPLERS
from core.labs.latent import LATENT_OBJECTIVES, MAX_MANIFOLD, MAX_SAMPLES, LatentTrainSettings
from core.training.vae import VAETrainConfig

# The page's VAE trained in the app: an MLP VAE (core/models/vae.py), about seven times faster a step on a CPU
# than the bundled convolutional one, with the same latent quality (held-out 10-NN accuracy about 0.69).
# bench/latent.py times exactly these settings (target: <= 20 s as a user waits for it, bench/browser.py).
APP_VAE_MODEL = {"hidden": 256, "depth": 2}
APP_VAE = VAETrainConfig(epochs=30, batch_size=128, lr=2e-3, beta=1.0, seed=0, log_every=5, snapshot_every=35)
BANDWIDTHS = {"scott": "Scott's rule", "factor": "A factor of my own"}  # Silverman's equals Scott's in 2-D


def vae_source() -> str:
    """ "bundled" or "trained" (a VAE trained on this page)."""
    return st.radio(
        "VAE",
        ["bundled", "trained"],
        horizontal=True,
        key="latent-vae-source",
        format_func={"bundled": "Bundled (mnist-vae-2d)", "trained": "Train one here"}.get,
    )


def vae_settings() -> VAETrainConfig:
    a, b, c, d, e = st.columns(5)
    epochs = a.number_input("Epochs", 1, 100, APP_VAE.epochs, key="vae-epochs", help="Passes over the digits in use.")
    lr = b.select_slider("Learning rate", [3e-4, 1e-3, 2e-3, 3e-3, 5e-3], APP_VAE.lr, key="vae-lr")
    batch = c.select_slider("Batch size", [32, 64, 128, 256, 512], APP_VAE.batch_size, key="vae-batch")
    beta = d.slider(
        "β (KL weight)",
        0.0,
        4.0,
        APP_VAE.beta,
        0.1,
        key="vae-beta",
        help="1 is the true ELBO. Below 1 the latent spreads out and overlaps less; above 1 it is "
        "pulled harder towards N(0, I) and reconstructions blur (β-VAE).",
    )
    seed = e.number_input("Seed", 0, 2**31 - 1, APP_VAE.seed, key="vae-seed")
    return replace(APP_VAE, epochs=int(epochs), batch_size=int(batch), lr=float(lr), beta=float(beta), seed=int(seed))


def manifold_settings() -> tuple[int, str]:
    a, b = st.columns(2)
    n = a.slider("Digits per side", 4, MAX_MANIFOLD, 15, key="manifold-n")
    spacing = b.radio(
        "Spacing",
        ["gaussian", "linear"],
        horizontal=True,
        key="manifold-spacing",
        format_func={"gaussian": "Gaussian quantiles", "linear": "Even, over the digits"}.get,
        help="Gaussian quantiles: Φ⁻¹ of evenly spaced probabilities, so every cell holds the same "
        "prior mass. Even: a regular grid over the encoded digits' extent.",
    )
    return int(n), spacing


@dataclass(frozen=True, kw_only=True)
class DensityChoice:
    bandwidth: str | float  # a rule's name or a factor
    size: int  # mesh points per side
    classes: list[int]
    surfaces: bool  # draw the 3-D view (WebGL: the slowest part of the page on a machine without a GPU)
    overall: bool  # add the density of all digits to it


def density_settings() -> DensityChoice:
    a, b, c = st.columns([1.2, 1, 2])
    rule = a.selectbox(
        "KDE bandwidth",
        list(BANDWIDTHS),
        format_func=BANDWIDTHS.get,
        key="kde-rule",
        help="scipy's gaussian_kde: each point gets a Gaussian with covariance factor² × the "
        "points' covariance. Scott: n^(-1/6) in 2-D.",
    )
    bandwidth: str | float = rule
    if rule == "factor":
        bandwidth = a.slider("Factor", 0.02, 1.0, 0.15, 0.01, key="kde-factor")
    size = b.slider("Grid points per side", 20, 150, 80, 10, key="kde-grid")
    classes = c.pills(  # every digit in sight at once: a multiselect this narrow hid the last of them
        "Classes", list(range(10)), selection_mode="multi", default=list(range(10)), key="kde-classes"
    )
    surfaces = c.toggle("3-D surfaces", False, key="kde-3d", help="Each class's density as a surface you can turn.")
    overall = surfaces and c.toggle("Overall density in the 3-D view", False, key="kde-overall")
    return DensityChoice(
        bandwidth=bandwidth, size=int(size), classes=[int(k) for k in classes], surfaces=surfaces, overall=overall
    )


def latent_train_settings() -> LatentTrainSettings:
    a, b, c, d, e = st.columns([1, 1, 1, 1, 1.6])
    default = LatentTrainSettings()
    steps = a.number_input("Training steps", 100, 10_000, default.steps, step=100, key="ldm-steps")
    width = b.select_slider("MLP width", [64, 96, 128, 256], default.width, key="ldm-width")
    depth = c.slider("Residual blocks", 1, 6, default.depth, key="ldm-depth")
    seed = d.number_input("Seed", 0, 2**31 - 1, 0, key="ldm-seed")
    objective = e.radio(
        "Objective",
        list(LATENT_OBJECTIVES),
        key="ldm-objective",
        horizontal=True,
        format_func={"epsilon": "ε, cosine schedule", "flow_prediction": "flow matching"}.get,
        help="Flow matching learns the velocity ε − x₀ of the path (1 − t) x₀ + t ε.",
    )
    return LatentTrainSettings(
        steps=int(steps), width=int(width), depth=int(depth), seed=int(seed), objective=objective
    )


@dataclass(frozen=True, kw_only=True)
class LatentSampling:
    sampler: str
    steps: int
    n: int
    seed: int
    label: int | None
    scale: float


def sampling_settings() -> LatentSampling:
    a, b, c = st.columns(3)
    names = list(SAMPLERS)
    sampler = a.selectbox(
        "Sampler", names, names.index("dpmpp_2m"), format_func=lambda k: SAMPLERS[k].title, key="ldm-sampler"
    )
    steps = b.slider("Steps", 1, 100, 20, key="ldm-sample-steps")
    n = c.slider("Samples", 1, min(MAX_SAMPLES, 32), 8, key="ldm-n", help="One path and one strip per sample.")
    a, b, c = st.columns(3)
    pick = a.selectbox(
        "Class",
        [-1, *range(10)],
        4,
        format_func=lambda k: "none (unconditional)" if k < 0 else str(k),
        key="ldm-class",
    )
    label = None if pick < 0 else int(pick)
    scale = b.slider(
        "Guidance scale",
        0.0,
        10.0,
        3.0,
        0.5,
        key="ldm-scale",
        disabled=label is None,
        help="Classifier-free guidance: 0 unconditional, 1 the conditional model, above 1 "
        "pushed further towards the class.",
    )
    seed = c.number_input("Sampling seed", 0, 2**31 - 1, 0, key="ldm-seed-sample")
    return LatentSampling(sampler=sampler, steps=int(steps), n=int(n), seed=int(seed), label=label, scale=float(scale))
