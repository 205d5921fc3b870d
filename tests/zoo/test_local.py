"""Bundled entries (offline), legacy checkpoints, the CLI and the Streamlit resource cache."""

from __future__ import annotations

import hashlib

import pytest
import torch
from huggingface_hub import PyTorchModelHubMixin

from tests.helpers import tiny_unet
from tests.zoo_fixtures import model_entry, write_manifest
from zoo.__main__ import main as zoo_cli
from zoo.architectures import ARCHITECTURES
from zoo.errors import ChecksumError, NeedsConnectionError
from zoo.loaders import load_model
from zoo.manifest import manifest_text
from zoo.registry import load_registry

_TINY_UNET = {  # what the bundled entry and the Hub one have in common: a small v-prediction UNet2DModel
    "family": "pixel",
    "format": "diffusers-unet",
    "sample_shape": [3, 8, 8],
    "prediction_type": "v_prediction",
    "schedule": {"kind": "cosine"},
}
TINY_BUNDLED = {"name": "tiny-bundled", "title": "Tiny bundled", "path": "bundled/tiny", **_TINY_UNET}
HUB_ONLY = {"name": "hub-only", "title": "Needs the Hub", "repo": "test-org/never-cached", **_TINY_UNET}


def _bundled(digest: str) -> str:
    """The manifest of a bundled entry whose weights are pinned to `digest`, and a Hub entry."""
    pinned = TINY_BUNDLED | {"sha256": {"diffusion_pytorch_model.safetensors": digest}}
    return manifest_text(models=[pinned, HUB_ONLY])


@pytest.fixture
def bundled_zoo(tmp_path, monkeypatch):
    folder = tmp_path / "bundled" / "tiny"
    unet = tiny_unet(seed=9)
    unet.save_pretrained(folder, safe_serialization=True)
    digest = hashlib.sha256((folder / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    manifest = write_manifest(tmp_path, _bundled(digest))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return manifest, unet


def test_bundled_entry_loads_offline_and_hub_entry_says_it_needs_a_connection(bundled_zoo):
    manifest, unet = bundled_zoo
    reg = load_registry(manifest)
    loaded = load_model(reg.model("tiny-bundled"))
    assert loaded.entry.source == "bundled" and loaded.denoiser.prediction_type == "v_prediction"
    assert loaded.param_count == sum(p.numel() for p in unet.parameters())
    with pytest.raises(NeedsConnectionError, match="needs a connection"):
        load_model(reg.model("hub-only"))


def test_tampered_bundled_file_is_refused(bundled_zoo):
    manifest, _ = bundled_zoo
    weights = manifest.parent / "bundled" / "tiny" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError, match="does not match its pinned sha256"):
        load_model(load_registry(manifest).model("tiny-bundled"))


def test_verify_cli_reports_ok_then_mismatch(bundled_zoo, capsys):
    manifest, _ = bundled_zoo
    assert zoo_cli(["--manifest", str(manifest), "verify"]) == 0
    assert "ok                tiny-bundled/diffusion_pytorch_model.safetensors" in capsys.readouterr().out
    weights = manifest.parent / "bundled" / "tiny" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"x" + weights.read_bytes()[1:])
    assert zoo_cli(["--manifest", str(manifest), "verify"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_list_info_and_fetch_cli(bundled_zoo, capsys):
    manifest, _ = bundled_zoo
    assert zoo_cli(["--manifest", str(manifest), "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-bundled" in out and "bundled" in out and "needs the Hub" in out
    assert zoo_cli(["--manifest", str(manifest), "info", "tiny-bundled"]) == 0
    assert "v_prediction" in capsys.readouterr().out
    assert zoo_cli(["--manifest", str(manifest), "fetch", "hub-only"]) == 2
    assert "needs a connection" in capsys.readouterr().err
    assert zoo_cli(["--manifest", str(manifest), "info", "nothing"]) == 2


def test_cli_fetch_downloads_with_the_local_hub(fake_hub, tmp_path, capsys):
    unet = tiny_unet(seed=2)
    unet.save_pretrained(tmp_path / "u", safe_serialization=True)
    for f in ("config.json", "diffusion_pytorch_model.safetensors"):
        fake_hub.add("test-org/never-cached", f, (tmp_path / "u" / f).read_bytes())
    manifest = write_manifest(tmp_path, _bundled("0" * 64))
    assert zoo_cli(["--manifest", str(manifest), "fetch", "hub-only"]) == 0
    assert "2 file(s)" in capsys.readouterr().out
    assert fake_hub.count("GET", "/resolve/") == 2


def test_legacy_attention_names_are_converted(tmp_path):
    unet = tiny_unet(seed=4)
    unet.save_pretrained(tmp_path / "bundled" / "tiny", safe_serialization=True)
    from safetensors.torch import load_file, save_file

    path = tmp_path / "bundled" / "tiny" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    renames = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    legacy = {}
    for k, v in state.items():
        for new, old in renames.items():
            k = k.replace(new, old)
        legacy[k] = v
    assert any(".query." in k for k in legacy)
    save_file(legacy, str(path))
    loaded = load_model(model_entry(tmp_path, TINY_BUNDLED))  # not pinned: the converted file loads
    for (name, p), q in zip(loaded.module.state_dict().items(), unet.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_streamlit_resource_cache_loads_once_and_never_caches_failures(bundled_zoo, monkeypatch):
    from ui.common import cache

    manifest, _ = bundled_zoo
    monkeypatch.setenv("ATLAS_MANIFEST", str(manifest))
    first = cache.zoo_model("tiny-bundled", "cpu")
    assert cache.zoo_model("tiny-bundled", "cpu") is first
    weights = manifest.parent / "bundled" / "tiny" / "diffusion_pytorch_model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"broken")
    cache._zoo_model.clear()
    with pytest.raises(ChecksumError):
        cache.zoo_model("tiny-bundled", "cpu")
    weights.write_bytes(good)
    assert cache.zoo_model("tiny-bundled", "cpu").param_count == first.param_count


class TinyMixinNet(torch.nn.Module, PyTorchModelHubMixin):
    """A small model of our own kind: init kwargs become config.json, weights model.safetensors."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(28 * 28, width), torch.nn.Linear(width, classes)
        )

    def forward(self, x):
        return self.body(x)


MIXIN = {
    "name": "tiny-classifier",
    "title": "Tiny classifier",
    "family": "classifier",
    "format": "hub-mixin",
    "architecture": "tiny-mixin",
    "path": "bundled/classifier",
}


def test_hub_mixin_folder_of_our_own_class_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "tiny-mixin", lambda config: TinyMixinNet(**config))
    torch.manual_seed(0)
    net = TinyMixinNet(width=5)
    net.save_pretrained(tmp_path / "bundled" / "classifier")
    assert (tmp_path / "bundled" / "classifier" / "model.safetensors").is_file()
    loaded = load_model(model_entry(tmp_path, MIXIN))
    assert loaded.denoiser is None and loaded.param_count == sum(p.numel() for p in net.parameters())
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(loaded.module(x), net(x))
