"""The bundled few-step students (mnist-flow-pd, and mnist-flow-pd-reflow made from it): pinned, loadable,
sampling digits in one and two network evaluations with their own sampler; the manifest's `sampler` field; and the
`distill` recipe kind that made them, run for a few steps on a tiny flow teacher."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
import torch

from core.diffusion.samplers import sample
from core.metrics.images import class_histogram, class_probabilities, classify
from tests.zoo_fixtures import TINY, write_manifest
from zoo import train as zoo_train
from zoo.errors import ManifestError, ZooError
from zoo.hub import sha256_of
from zoo.loaders import load_model
from zoo.manifest import manifest_text
from zoo.registry import MANIFEST, OwnSampler, load_registry, parse_manifest

METHOD = {"mnist-flow-pd": "progressive", "mnist-flow-pd-reflow": "reflow"}  # each student and how it was made
SAMPLES = 40


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


@pytest.fixture(scope="module", params=list(METHOD))
def student(request):
    return load_model(load_registry(MANIFEST).model(request.param))


@pytest.fixture(scope="module")
def classifier():
    return load_model(load_registry(MANIFEST).model("mnist-lenet")).module


def own_samples(loaded, nfe: int, n: int = SAMPLES, seed: int = 0, sampler: str | None = None) -> torch.Tensor:
    """n samples of `loaded` with its own sampler (or `sampler`) in `nfe` steps from seed `seed`, as the card draws
    them: the same noise for every model of the same schedule."""
    sigmas = loaded.schedule.capped_sigmas(nfe, "trailing")
    noise = torch.randn((n, *loaded.sample_shape), generator=torch.Generator().manual_seed(seed)) * float(sigmas[0])
    return sample(sampler or loaded.entry.sampler.name, loaded.denoiser, noise, sigmas).clamp(-1, 1)


def test_the_student_is_pinned_and_names_its_teacher_and_sampler(student):
    entry = student.entry
    assert entry.bundled and set(entry.sha256) == set(entry.files)
    assert all(sha256_of(entry.path / f) == digest for f, digest in entry.sha256.items())
    assert entry.sampler == OwnSampler(name="euler", steps=1)
    run = json.loads((entry.run / "config.json").read_text())
    assert run["teacher"] == "mnist-flow" and run["distill"]["method"] == METHOD[entry.name]
    if METHOD[entry.name] == "reflow":  # it starts from the progressive student, flow-matched on the teacher's pairs
        assert run["distill"]["start"] == "mnist-flow-pd" and run["train_images"] == run["distill"]["pairs"]
    assert run["sampler"] == {"name": "euler", "steps": 1} and run["wall_seconds"] > 0
    teacher = load_model(load_registry(MANIFEST).model("mnist-flow"))
    assert student.param_count == teacher.param_count  # the teacher's network, distilled
    # its folder's flow scheduler config, with the sampler it was made for: where the pages start
    assert student.scheduler is not None and student.scheduler.sampler == "euler"
    assert "made for 1 step" in student.scheduler.followed
    assert (student.schedule.path, student.schedule.num_steps) == ("flow", teacher.schedule.num_steps)


@pytest.mark.parametrize("nfe", [1, 2])
def test_its_own_sampler_draws_digits_in_one_and_two_evaluations(student, classifier, nfe):
    images = own_samples(student, nfe)
    assert images.shape == (SAMPLES, 1, 28, 28) and torch.isfinite(images).all()
    confident = class_probabilities(classifier, images).max(1)
    shares = class_histogram(classify(classifier, images)[0])
    # digits: the classifier reads most of them as one class over all others (0.93 and 0.95 of these 40; the
    # teacher's one Euler step, a blur of every digit at once: none), and they spread over the classes as digits do
    # (pure noise reads confidently too, but as one class for all)
    assert float(np.mean(confident > 0.5)) >= 0.8, confident
    assert int((shares > 0).sum()) >= 8 and float(shares.max()) <= 0.3, shares


def test_one_step_of_the_student_beats_one_step_of_its_teacher(student, classifier):
    teacher = load_model(load_registry(MANIFEST).model("mnist-flow"))
    images = own_samples(student, 1), own_samples(teacher, 1, sampler="euler")  # the same noise
    sure = [float(np.mean(class_probabilities(classifier, x).max(1))) for x in images]
    assert sure[0] > sure[1] + 0.3, sure  # the teacher's one Euler step is the blurred mean of the digits: 0.30


def test_the_card_states_the_goal_and_its_table(student):
    from zoo.cards import card_fields

    card = student.entry.path / "README.md"
    fields = card_fields(card)
    assert fields["goal_1_step"] in ("met", "not met") and fields["goal_2_steps"] in ("met", "not met")
    text = card.read_text()
    name = student.name
    for row in (f"| {name} | euler | 1 |", f"| {name} | euler | 2 |", "| mnist-flow | dpmpp_2m | 50 |"):
        assert row in text


def _entry(**fields) -> dict:
    return {
        "name": "few",
        "title": "Few",
        "family": "pixel",
        "format": "diffusers-unet",
        "path": "few",
        "sample_shape": [1, 28, 28],
        "prediction_type": "flow_prediction",
        "schedule": {"kind": "flow"},
    } | fields


def test_the_manifest_checks_a_models_own_sampler(tmp_path):
    ok = parse_manifest(manifest_text(models=[_entry(sampler={"name": "euler", "steps": 2})]), tmp_path)
    assert ok.model("few").sampler == OwnSampler(name="euler", steps=2)
    assert parse_manifest(manifest_text(models=[_entry()]), tmp_path).model("few").sampler is None
    bad = [
        ({"name": "consistent", "steps": 1}, "must be one of"),
        ({"name": "euler", "steps": 0}, "steps from 1"),
        ({"name": "euler"}, "'steps' is required"),
        ({"name": "euler", "steps": 1, "eta": 1}, "unknown field"),
    ]
    for sampler, problem in bad:
        with pytest.raises(ManifestError, match=problem):
            parse_manifest(manifest_text(models=[_entry(sampler=sampler)]), tmp_path)
    classifier = _entry(family="classifier", format="hub-mixin", architecture="lenet", sampler={"name": "euler"})
    with pytest.raises(ManifestError):
        parse_manifest(manifest_text(models=[classifier]), tmp_path)


def distill_recipe(method: str, options: str) -> str:
    return f"""
name = "tiny-few"
kind = "distill"
title = "tiny-few"
description = "test"
data = "mnist"
teacher = "tiny-flow"

[distill]
method = "{method}"
{options}

[train]
steps = 4
batch_size = 4
lr = 0.001
warmup_steps = 1
ema_decay = 0.5
seed = 0
log_every = 2
sample_every = 2
"""


@pytest.fixture
def tiny_teacher_zoo(tmp_path, monkeypatch):
    """A manifest with a tiny untrained flow UNet (tiny-flow) and the real data sets, read by zoo.train."""
    from core.models.unet import build_unet, unet_config

    torch.manual_seed(0)
    build_unet(unet_config(None, **TINY)).save_pretrained(tmp_path / "tiny-flow", safe_serialization=True)
    teacher = _entry(name="tiny-flow", title="Tiny flow", path="tiny-flow", data="mnist")
    datasets = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["datasets"]
    manifest = write_manifest(tmp_path, manifest_text(models=[teacher], datasets=datasets))
    monkeypatch.setattr(zoo_train, "load_registry", lambda: load_registry(manifest))
    return tmp_path


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("progressive", "teacher_steps = 4"),
        ("consistency_distillation", 'intervals = 4\nsolver = "euler"'),
        ("reflow", 'start = "tiny-flow"\npairs = 6\nsolver = "heun"\nsolver_steps = 2\ngrid_nfe = [1, 2]'),
    ],
)
def test_the_distill_recipe_kind_trains_a_student_of_its_teacher_into_a_loadable_folder(
    tiny_teacher_zoo, method, options
):
    tmp = tiny_teacher_zoo
    (tmp / "tiny-few.toml").write_text(distill_recipe(method, options))
    out = zoo_train.train(str(tmp / "tiny-few.toml"), tmp / "tiny-few")
    run = json.loads((out / "run" / "config.json").read_text())
    assert run["kind"] == "distill" and run["teacher"] == "tiny-flow" and run["distill"]["method"] == method
    own = "consistency" if method == "consistency_distillation" else "euler"  # a consistency model: its own rule
    if method == "reflow":  # it learnt from its teacher's own (noise, sample) pairs, 6 of them here
        assert run["train_images"] == 6 and run["data"] == "6 (noise, sample) pairs of tiny-flow"
    assert run["sampler"] == {"name": own, "steps": 1} and run["train"]["prediction_type"] == "flow_prediction"
    assert sorted(p.name for p in (out / "run" / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    assert not (out / "run" / "checkpoints").exists()
    entry = _entry(name="tiny-few", path="tiny-few", schedule="scheduler_config", sampler=run["sampler"])
    entry["files"] = ["config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json"]
    registry = parse_manifest(manifest_text(models=[entry, _entry(name="tiny-flow", path="tiny-flow")]), tmp)
    student, teacher = (load_model(registry.model(n)) for n in ("tiny-few", "tiny-flow"))
    assert student.param_count == teacher.param_count and student.schedule.path == "flow"
    assert student.scheduler is not None and student.scheduler.sampler == own
    moved = [
        not torch.equal(a, b) for a, b in zip(student.module.parameters(), teacher.module.parameters(), strict=True)
    ]
    assert any(moved)  # trained: the student left its teacher's weights
    for nfe in (1, 3):
        images = own_samples(student, nfe, n=3)
        assert images.shape == (3, 1, 28, 28) and torch.isfinite(images).all()
    # one step of either rule is the flow adapter's x_0 estimate: the same image (Euler's x + (0 - sigma) d at
    # sigma = 1,000 rounds in float32 at about 1e-4)
    one = own_samples(student, 1, n=3, sampler="consistency")
    torch.testing.assert_close(one, own_samples(student, 1, n=3, sampler="euler"), atol=1e-3, rtol=0)


def test_a_distill_recipe_needs_a_teacher_and_a_known_method(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(distill_recipe("shortcut", ""))
    with pytest.raises(ZooError, match="names its teacher and a method"):
        zoo_train.load_recipe(str(path))
    path.write_text(distill_recipe("progressive", "").replace('teacher = "tiny-flow"', ""))
    with pytest.raises(ZooError, match="names its teacher"):
        zoo_train.load_recipe(str(path))


def test_the_pages_and_the_cli_start_the_student_at_its_own_step_count(student):
    """folder_settings gives its sampler and step count; Compare checkpoints and `zoo compare` leave it its own
    step count unless a sampler is named (then the page's steps, like any checkpoint's)."""
    from core.labs.compare import settings_for
    from core.labs.samplers import SamplerSettings, folder_settings

    assert student.scheduler is not None and student.scheduler.steps == 1
    own = folder_settings(student, SamplerSettings(steps=20))
    assert (own.sampler, own.steps) == ("euler", 1)
    assert settings_for(student, None, 20, 0, 4, None).steps == 1
    assert settings_for(student, "euler", 20, 0, 4, None).steps == 20
    teacher = load_model(load_registry().model("mnist-flow"))
    assert settings_for(teacher, None, 20, 0, 4, None).steps == 20  # the others keep the page's count
