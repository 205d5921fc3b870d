"""What one evaluation of a model costs, counted on the meta device when a model is named or loaded
(zoo/architectures.forward_flops, core/cost.count_flops), and the operator's limit on it: a tiny network that
would take minutes an image (the issue's 0.7 MB UNet with attention at 256x256) is refused, by a Hub id, a local
folder or a zoo entry, before any weight is read, built or evaluated."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from core import cost
from core.cost import count_flops
from tests.helpers import tiny_unet
from tests.zoo_fixtures import HOSTILE_UNET, TINY_COND_CONFIG, cond_entry, model_entry
from zoo.architectures import ARCHITECTURES, check_flops, forward_flops
from zoo.errors import TooLargeError
from zoo.loaders import hub_unet_entry, load_model
from zoo.local import local_entry

REFUSED = r"costs 2,216 GFLOP, over this server's 1,000 GFLOP per image \(ATLAS_MAX_GFLOPS_PER_IMAGE\)"
JUNK = b"\x00" * 64  # would fail as weights, had anything read them

# The published configs of two Hub models in the zoo (google/ddpm-cifar10-32 and google/ddpm-celebahq-256).
CIFAR = {
    "_class_name": "UNet2DModel",
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": [128, 256, 256, 256],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": None,
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
}
CELEBA = CIFAR | {
    "sample_size": 256,
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "down_block_types": ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4,
}


def test_a_conv_and_linear_network_counts_two_flops_per_multiply_add():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10)
    )
    conv = 2 * (8 * 6 * 6) * (3 * 3 * 3)  # every output value: a 3x3x3 window
    linear = 2 * 10 * (8 * 6 * 6)
    with torch.device("meta"):
        meta, x = net.to("meta"), torch.zeros(1, 3, 6, 6)
        assert count_flops(lambda: meta(x)) == conv + linear
        x4 = torch.zeros(4, 3, 6, 6)
        assert count_flops(lambda: meta(x4)) == 4 * (conv + linear)


def attention_flops(layers: int, pixels: int, channels: int) -> int:
    """Q K^T and its weights times V in `layers` attention layers over `pixels` positions of `channels`."""
    return layers * 2 * (2 * pixels * pixels * channels)


@pytest.mark.parametrize(
    ("architecture", "config", "shape", "attention"),
    [
        ("unet2d", TINY_COND_CONFIG, (3, 8, 8), attention_flops(4, 4 * 4, 32)),  # down, mid, 2 up: at 4x4
        ("mlp-denoiser", {"dim": 2, "width": 64, "depth": 2, "num_classes": 10, "num_steps": 100}, (2,), 0),
    ],
)
def test_the_count_on_the_meta_device_is_torchs_count_of_the_real_forward(architecture, config, shape, attention):
    """torch's own FlopCounterMode around a real forward of the real network is the oracle, plus attention's
    matrix products: on a CPU attention runs as one fused kernel that torch's counter does not see."""
    network = ARCHITECTURES[architecture](config).eval()
    x, t = torch.randn(1, *shape), torch.tensor([10.0])
    extra = {"class_labels": torch.tensor([3])} if architecture == "unet2d" else {}
    with torch.no_grad(), FlopCounterMode(display=False) as oracle:
        network(x, t, **extra)
    assert forward_flops(architecture, config, shape, "m") == oracle.get_total_flops() + attention > attention


def test_the_default_limit_passes_the_zoos_models_and_refuses_the_issues():
    flops = {
        name: forward_flops("unet2d", c, (3, c["sample_size"], c["sample_size"]), name)
        for name, c in (("cifar", CIFAR), ("celeba", CELEBA), ("hostile", HOSTILE_UNET))
    }
    assert 11e9 < flops["cifar"] < 13e9 and 450e9 < flops["celeba"] < 550e9
    assert 0 < flops["hostile"] - attention_flops(4, 256 * 256, 32) < 0.01 * flops["hostile"]  # attention's
    check_flops(flops["celeba"], "celeba")  # the zoo's largest (a GPU is recommended for it)
    with pytest.raises(TooLargeError, match=REFUSED):
        check_flops(flops["hostile"], "hostile")


def test_a_local_folder_with_the_hostile_config_is_refused_before_its_weights_are_read(tmp_path):
    folder = tmp_path / "small-but-slow"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HOSTILE_UNET))
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(JUNK)
    with pytest.raises(TooLargeError, match=REFUSED):
        local_entry(str(folder), trusted=True)


def test_a_hub_repo_with_the_hostile_config_is_refused_before_its_weights_are_fetched(fake_hub):
    fake_hub.add("evil/slow", "config.json", json.dumps(HOSTILE_UNET).encode())
    fake_hub.add("evil/slow", "diffusion_pytorch_model.safetensors", JUNK)
    with pytest.raises(TooLargeError, match=REFUSED):
        hub_unet_entry("evil/slow")
    assert fake_hub.count(contains="diffusion_pytorch_model") == 0


def test_a_zoo_entry_with_the_hostile_config_is_refused_at_load_before_its_weights_are_read(tmp_path):
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "model.pth").write_bytes(JUNK)
    config = {k: v for k, v in HOSTILE_UNET.items() if k != "_class_name"}
    entry = cond_entry("slow", "unused/repo", file="model.pth", config=config, sample_shape=[3, 256, 256])
    del entry["repo"], entry["num_classes"], entry["null_label"]
    with pytest.raises(TooLargeError, match=REFUSED):
        load_model(model_entry(tmp_path, entry | {"path": "slow"}))


def test_the_limit_is_the_operators_and_a_loaded_model_keeps_its_count(tmp_path, monkeypatch):
    tiny_unet(channels=1).save_pretrained(tmp_path / "tiny", safe_serialization=True)
    monkeypatch.setenv("ATLAS_MAX_GFLOPS_PER_IMAGE", "0.001")  # 1 MFLOP
    with pytest.raises(TooLargeError, match=r"over this server's 0\.001 GFLOP per image"):
        local_entry(str(tmp_path / "tiny"), trusted=True)
    monkeypatch.delenv("ATLAS_MAX_GFLOPS_PER_IMAGE")
    loaded = load_model(local_entry(str(tmp_path / "tiny"), trusted=True))
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert loaded.flops_per_image == forward_flops("unet2d", config, (1, 8, 8), "tiny") > 1e6
    # Its evaluations feed its speed (the first is a warm-up), which its estimates use.
    x, sigma = torch.zeros(2, 1, 8, 8), torch.ones(2)
    for _ in range(2):
        loaded.denoiser(x, sigma)
    assert cost.model_rate(loaded.name, loaded.device, 2) > 0
