"""The zoo's Hub path against a real local endpoint: downloads, cache hits, offline, and every failure."""

from __future__ import annotations

import hashlib

import pytest
import torch

from core.diffusion.denoisers import with_labels
from core.errors import BadInputError
from tests.zoo_fixtures import (
    TINY_COND_CONFIG,
    cond_entry,
    conditional_pth,
    flow_pipeline_files,
    model_entry,
    pickled_module,
    pipeline_files,
)
from zoo.errors import CheckpointError, ChecksumError, HubError, NeedsConnectionError
from zoo.hub import cached_files, fetch, forget_probes
from zoo.loaders import hub_unet_entry, load_model

PIPE_ENTRY = {
    "name": "tiny-pipe",
    "title": "Tiny pipeline",
    "family": "pixel",
    "format": "diffusers-pipeline",
    "repo": "test-org/tiny-ddpm",
    "sample_shape": [3, 8, 8],
    "prediction_type": "epsilon",
    "schedule": "scheduler_config",
}


def _serve_pipeline(fake_hub, tmp_path, repo="test-org/tiny-ddpm"):
    files, unet = pipeline_files(tmp_path)
    for name, data in files.items():
        fake_hub.add(repo, name, data)
    return files, unet


def test_pipeline_model_downloads_once_then_loads_from_the_cache(fake_hub, tmp_path, monkeypatch):
    _, unet = _serve_pipeline(fake_hub, tmp_path)
    entry = model_entry(tmp_path, PIPE_ENTRY)
    loaded = load_model(entry)
    first = fake_hub.count(contains="/resolve/")
    assert first >= 3  # one download per file
    assert loaded.schedule.name == "cosine"  # read from scheduler/scheduler_config.json
    assert not loaded.module.training and not any(p.requires_grad for p in loaded.module.parameters())
    # the denoiser is the saved UNet, wrapped
    x, sigma = torch.randn(2, 3, 8, 8), torch.tensor([3.0, 3.0])
    t = loaded.schedule.sigma_to_t(sigma).float()
    expected = x - 3.0 * unet(x / 10**0.5, t).sample
    torch.testing.assert_close(loaded.denoiser(x, sigma), expected, rtol=1e-5, atol=1e-5)
    # second load: no request at all, and it also works offline
    load_model(entry)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_model(entry)
    assert fake_hub.count(contains="/resolve/") == first


def test_state_dict_pth_with_model_key_loads_and_supports_guidance(fake_hub, tmp_path):
    data, unet = conditional_pth()
    fake_hub.add("test-org/tiny-cond", "ddpm-linear.pth", data)
    entry = model_entry(tmp_path, cond_entry("cond", "test-org/tiny-cond"))
    loaded = load_model(entry)
    assert loaded.param_count == sum(p.numel() for p in unet.parameters())
    assert loaded.file_bytes == len(data)
    x, sigma, y = torch.randn(2, 3, 8, 8), torch.tensor([1.0, 1.0]), torch.tensor([3, 7])
    assert loaded.supports_guidance and loaded.null_label == 10
    guided = with_labels(loaded.denoiser, y, 2.0, loaded.null_label)(x, sigma)
    cond = loaded.denoiser(x, sigma, class_labels=y)
    uncond = loaded.denoiser(x, sigma, class_labels=torch.full_like(y, 10))
    torch.testing.assert_close(guided, uncond + 2.0 * (cond - uncond), rtol=1e-4, atol=1e-4)


def test_offline_without_cache_fails_fast_with_a_sentence_and_no_request(fake_hub, tmp_path, monkeypatch):
    _serve_pipeline(fake_hub, tmp_path)
    entry = model_entry(tmp_path, PIPE_ENTRY)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NeedsConnectionError, match="needs a connection"):
        load_model(entry)
    assert fake_hub.count() == 0


def test_unreachable_endpoint_fails_with_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    forget_probes()
    with pytest.raises(NeedsConnectionError, match="cannot be reached"):
        fetch("google/ddpm-cifar10-32", ["unet/config.json"])


def test_unknown_repo_revision_and_file_are_named(fake_hub, tmp_path):
    _serve_pipeline(fake_hub, tmp_path)
    with pytest.raises(HubError, match="no repo nobody/nothing"):
        fetch("nobody/nothing", ["config.json"])
    with pytest.raises(HubError, match=r"no file 'missing\.bin'"):
        fetch("test-org/tiny-ddpm", ["missing.bin"])
    with pytest.raises(HubError, match="no revision 'v9'"):
        fetch("test-org/tiny-ddpm", ["unet/config.json"], revision="v9")


@pytest.mark.parametrize(
    "repo_id", ["../x", "a/../../etc", "has space/x", "https://huggingface.co/a/b", "a/b/c", "x", "", "a--b/c"]
)
def test_malformed_repo_ids_are_refused_before_any_request(fake_hub, repo_id):
    with pytest.raises(BadInputError, match="not a Hugging Face repo id"):
        fetch(repo_id, ["config.json"])
    with pytest.raises(BadInputError):
        hub_unet_entry(repo_id)
    assert fake_hub.count() == 0


@pytest.mark.parametrize("filename", ["../secret", "/etc/passwd", "a//b", "a/./b", "a b.json"])
def test_path_tricks_in_file_names_are_refused(fake_hub, filename):
    with pytest.raises(BadInputError):
        fetch("test-org/tiny-ddpm", [filename])
    assert fake_hub.count() == 0


def test_sha256_mismatch_is_refused_and_nothing_stays_in_the_cache(fake_hub, tmp_path):
    data, _ = conditional_pth()
    fake_hub.add("test-org/tiny-cond", "ddpm-linear.pth", data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    entry = model_entry(tmp_path, cond_entry("cond", "test-org/tiny-cond", sha256={"ddpm-linear.pth": wrong}))
    with pytest.raises(ChecksumError, match="sha256"):
        load_model(entry)
    assert cached_files("test-org/tiny-cond", ["ddpm-linear.pth"]) == {"ddpm-linear.pth": None}
    # the right digest loads
    right = hashlib.sha256(data).hexdigest()
    (tmp_path / "fixed").mkdir()
    good = model_entry(tmp_path / "fixed", cond_entry("cond", "test-org/tiny-cond", sha256={"ddpm-linear.pth": right}))
    assert load_model(good).param_count > 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (lambda: conditional_pth()[0][:1000], "damaged or truncated"),
        (pickled_module, "not a plain state dict"),
        (lambda: b"", "is empty"),
    ],
    ids=["truncated", "pickled-module", "empty"],
)
def test_broken_pth_files_are_named(fake_hub, tmp_path, payload, message):
    fake_hub.add("test-org/broken", "ddpm-linear.pth", payload())
    entry = model_entry(tmp_path, cond_entry("b", "test-org/broken"))
    with pytest.raises(CheckpointError, match=message):
        load_model(entry)


def test_truncated_safetensors_is_named(fake_hub, tmp_path):
    files, _ = pipeline_files(tmp_path)
    name = "unet/diffusion_pytorch_model.safetensors"
    files[name] = files[name][: len(files[name]) // 2]
    for n, data in files.items():
        fake_hub.add("test-org/tiny-ddpm", n, data)
    entry = model_entry(tmp_path, PIPE_ENTRY)
    with pytest.raises(CheckpointError, match="damaged or not a safetensors file"):
        load_model(entry)


def test_wrong_shapes_are_refused_with_an_example(fake_hub, tmp_path):
    data, _ = conditional_pth()
    fake_hub.add("test-org/tiny-cond", "ddpm-linear.pth", data)
    config = {**TINY_COND_CONFIG, "block_out_channels": [24, 32]}
    entry = model_entry(tmp_path, cond_entry("c", "test-org/tiny-cond", config=config))
    with pytest.raises(CheckpointError, match=r"wrong-shaped tensors \(e\.g\. "):
        load_model(entry)


def test_missing_state_dict_key_lists_what_is_there(fake_hub, tmp_path):
    data, _ = conditional_pth()
    fake_hub.add("test-org/tiny-cond", "ddpm-linear.pth", data)
    entry = model_entry(tmp_path, cond_entry("c", "test-org/tiny-cond", state_dict_key="ema"))
    with pytest.raises(CheckpointError, match=r"no 'ema' entry .*model, epoch"):
        load_model(entry)


@pytest.mark.parametrize("layout", ["pipeline", "bare"])
def test_typed_repo_id_with_a_unet(fake_hub, tmp_path, layout):
    files, _ = pipeline_files(tmp_path)
    if layout == "bare":
        files = {k.removeprefix("unet/"): v for k, v in files.items() if k.startswith("unet/")}
    for n, data in files.items():
        fake_hub.add("someone/my-ddpm", n, data)
    entry = hub_unet_entry(" someone/my-ddpm ")
    assert entry.sample_shape == (3, 8, 8) and entry.family == "pixel"
    loaded = load_model(entry)
    out = loaded.denoiser(torch.randn(1, 3, 8, 8), torch.ones(1))
    assert out.shape == (1, 3, 8, 8)
    assert loaded.schedule.name == ("cosine" if layout == "pipeline" else "linear")


def test_a_flow_matching_repo_loads_as_a_flow_model_and_samples_as_diffusers_does(fake_hub, tmp_path):
    """A UNet saved with diffusers' FlowMatchEulerDiscreteScheduler (shift 3): the atlas reads it as the flow
    path with that shift and a velocity model, and its Euler steps are the scheduler's own loop, step for step."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from core.diffusion.flow import sigma_of_t
    from core.diffusion.samplers import sample

    files, unet = flow_pipeline_files(tmp_path)
    for name, data in files.items():
        fake_hub.add("someone/tiny-flow", name, data)
    entry = hub_unet_entry("someone/tiny-flow")
    assert entry.prediction_type == "flow_prediction"
    loaded = load_model(entry)
    assert (loaded.schedule.path, loaded.schedule.shift) == ("flow", 3.0)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(tmp_path / "flow" / "scheduler")
    scheduler.set_timesteps(8)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for k, t in enumerate(scheduler.timesteps):
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
            if k == 0:  # t = 1 is pure noise (sigma infinite): the atlas starts from the next time
                start, ts = x.clone(), scheduler.sigmas[1:].double()
    sigmas = torch.cat([sigma_of_t(ts[:-1]), torch.zeros(1, dtype=torch.float64)])
    ours = sample("euler", loaded.denoiser, start * (1 + sigmas[0]), sigmas)
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
