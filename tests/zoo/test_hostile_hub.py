"""Hub repos built to cost the server (a local Hub endpoint serving real files): a tiny config describing
billions of parameters, weights that do not match their config, and files over the download limit are each
refused before the network is built or the file is fetched. Typed ids and timesteps come back short and inert."""

from __future__ import annotations

import json
import resource

import pytest

from core.diffusion.forward import parse_timesteps
from core.errors import BadInputError
from tests.zoo_fixtures import pipeline_files
from zoo.errors import CheckpointError, TooLargeError
from zoo.hub import validate_repo_id
from zoo.loaders import hub_unet_entry, load_model

HUGE = {  # 1 KB of JSON, 2.48 billion parameters: 10 GB of float32 and half a minute to build, before
    "_class_name": "UNet2DModel",
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 4,
    "block_out_channels": [2048, 2048],
    "down_block_types": ["DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D"],
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_tiny_config_for_billions_of_parameters_is_refused_before_any_weight(fake_hub):
    fake_hub.add("evil/huge", "config.json", json.dumps(HUGE).encode())
    fake_hub.add("evil/huge", "diffusion_pytorch_model.safetensors", b"\x00" * 16)
    peak = _peak_mb()
    with pytest.raises(TooLargeError, match=r"2,483\.5 million parameters; this server builds at most 300 million"):
        hub_unet_entry("evil/huge")
    assert _peak_mb() - peak < 200  # (10 GB and 27 s before; bench/hostile.py)
    assert fake_hub.count(contains="diffusion_pytorch_model") == 0  # the weights were never asked for


def test_the_parameter_limit_is_the_operators(fake_hub, tmp_path, monkeypatch):
    files, _ = pipeline_files(tmp_path)
    for name, data in files.items():
        fake_hub.add("someone/tiny", name, data)
    monkeypatch.setenv("ATLAS_MAX_PARAMETERS", "1000")
    with pytest.raises(TooLargeError, match=r"at most 0 million \(ATLAS_MAX_PARAMETERS\)"):
        hub_unet_entry("someone/tiny")
    monkeypatch.delenv("ATLAS_MAX_PARAMETERS")
    assert load_model(hub_unet_entry("someone/tiny")).param_count > 1000


def test_weights_that_do_not_match_their_config_are_refused_before_the_network_is_built(fake_hub, tmp_path):
    small, _ = pipeline_files(tmp_path / "a")
    config = json.loads(small["unet/config.json"])
    config["block_out_channels"] = [64, 128]  # the config of a bigger network, beside the small one's weights
    fake_hub.add("evil/mismatch", "unet/config.json", json.dumps(config).encode())
    fake_hub.add(
        "evil/mismatch", "unet/diffusion_pytorch_model.safetensors", small["unet/diffusion_pytorch_model.safetensors"]
    )
    entry = hub_unet_entry("evil/mismatch")
    with pytest.raises(CheckpointError, match=r"holds [0-9,]+ numbers, but its config describes a network of"):
        load_model(entry)


def test_a_file_over_the_download_limit_is_refused_by_its_stated_size(fake_hub, tmp_path, monkeypatch):
    files, _ = pipeline_files(tmp_path)
    for name, data in files.items():
        fake_hub.add("someone/big-file", name, data)
    monkeypatch.setenv("ATLAS_MAX_DOWNLOAD_MB", "0.5")  # the tiny UNet's weights are 0.7 MB
    with pytest.raises(
        TooLargeError, match=r"diffusion_pytorch_model.safetensors from someone/big-file is 0.7 MB; .* at most 0.5 MB"
    ):
        hub_unet_entry("someone/big-file")
    assert fake_hub.count("GET", contains="diffusion_pytorch_model") == 0  # asked its size (HEAD), never fetched


@pytest.mark.parametrize("typed", ["x" * 1_000_000, "<img src=x onerror=alert(1)>/**bold**", "a/b\n" * 10_000])
def test_a_typed_repo_id_is_quoted_back_short_and_inert(typed):
    with pytest.raises(BadInputError) as refused:
        validate_repo_id(typed)
    message = str(refused.value)
    assert len(message) < 250 and not set(message.split(" is not")[0]) & set("<>*\n")


def test_typed_timesteps_are_bounded_before_parsing():
    with pytest.raises(BadInputError, match="at most 16 timesteps"):
        parse_timesteps("1," * 500_000, 1000)
    with pytest.raises(BadInputError) as refused:
        parse_timesteps("1, 2, <b>x</b>", 1000)
    assert "<" not in str(refused.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"norm_num_groups": 0}, "norm_num_groups must be whole numbers from 1"),
        ({"block_out_channels": [], "down_block_types": [], "up_block_types": []}, "block_out_channels must be whole"),
        (
            {"block_out_channels": [-16, 32, 32]},
            r"block_out_channels must be whole numbers from 1 to 65,536 \(got .-16",
        ),
        ({"attention_head_dim": 2.5}, "attention_head_dim must be whole numbers"),
        ({"layers_per_block": True}, "layers_per_block must be whole numbers"),
        ({"layers_per_block": 2000, "block_out_channels": [4, 4, 4], "norm_num_groups": 4}, "layers_per_block = 2000"),
        ({"sample_size": 10**9}, "sample_size = 1000000000"),
    ],
    ids=[
        "zero groups",
        "no blocks",
        "a negative width (a RuntimeError in torch, which skipped the size check)",
        "a fractional head size",
        "true layers",
        "2,000 layers a block (6 M parameters, a minute to build)",
        "huge sample",
    ],
)
def test_configs_built_to_break_or_stall_the_builder_get_a_sentence(fake_hub, change, match):
    blocks = {"down_block_types": ["DownBlock2D"] * 3, "up_block_types": ["UpBlock2D"] * 3}
    config = {"_class_name": "UNet2DModel", "block_out_channels": [32, 32, 32], **blocks, **change}
    fake_hub.add("evil/odd", "config.json", json.dumps(config).encode())
    with pytest.raises((CheckpointError, TooLargeError), match=match):  # before the build (2,000 layers: 27 s)
        hub_unet_entry("evil/odd")
