"""The manifest writer (zoo/manifest.py): what it writes, the registry's parser reads back as given."""

from __future__ import annotations

import tomllib

import pytest

from zoo.manifest import manifest_text
from zoo.registry import MANIFEST, load_registry, parse_manifest


def test_the_real_manifest_written_again_parses_to_the_same_registry():
    data = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    text = manifest_text(models=data["models"], datasets=data["datasets"])
    assert tomllib.loads(text) == data
    written, real = parse_manifest(text, MANIFEST.parent), load_registry(MANIFEST)
    assert list(written.models) == list(real.models) and written.models == real.models
    assert list(written.datasets) == list(real.datasets) and written.datasets == real.datasets
    assert "\n[models.config]\n" in text  # a model's config as a sub-table, as the manifest is written by hand


def test_every_kind_of_value_round_trips_through_toml():
    model = {
        "name": "odd",
        "title": 'Quotes " and \\ backslashes, a tab\t, a newline\n, DEL \x7f, accents é and 🙂',
        "files": ["a.pth", "dir/b.safetensors"],
        "sample_shape": [3, 8, 8],
        "schedule": {"kind": "linear", "steps": 10, "beta_start": 1e-05, "beta_end": 0.5},
        "sha256": {"dir/b.safetensors": "0" * 64, "": "empty key"},
        "gpu_recommended": False,
        "nested": [[1, 2], [], {"a": True}, {}],
        "extremes": [float("inf"), -float("inf"), 1e300, -0.0, 2**62],
        "config": {"block_out_channels": [8, 16], "norm_num_groups": 8, "act_fn": "silu", "sub": {"x": 1.5}},
    }
    dataset = {"name": "d", "splits": {"train": "t.parquet"}, "shape": [1, 28, 28]}
    parsed = tomllib.loads(manifest_text(models=[model, {"name": "second"}], datasets=[dataset]))
    assert parsed == {"models": [model, {"name": "second"}], "datasets": [dataset]}
    assert list(parsed["models"][0]) == list(model)  # keys in the order given
    nan = tomllib.loads(manifest_text(datasets=[{"x": float("nan")}]))["datasets"][0]["x"]
    assert nan != nan


def test_a_value_toml_cannot_hold_is_refused():
    for value in (None, object(), {1, 2}):
        with pytest.raises(TypeError, match="strings, numbers, booleans, lists and tables"):
            manifest_text(models=[{"name": "m", "field": value}])
