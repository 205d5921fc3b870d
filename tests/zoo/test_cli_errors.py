"""`python -m zoo` given bad input, run as a user runs it (a subprocess): one sentence on stderr, exit status 2,
no traceback, and nothing trained or written. Before, each of these printed a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "binary.bin").write_bytes(bytes(range(256)) * 12)
    (folder / "a-file").write_text("not a folder")
    for name, config in [
        ("deep", '{"a": ' * 200_000 + "1" + "}" * 200_000),  # RecursionError before
        ("negative", json.dumps({"_class_name": "UNet2DModel", "block_out_channels": [-16, 32]})),  # RuntimeError
    ]:
        (folder / name).mkdir()
        (folder / name / "config.json").write_text(config)
        save_file({"w": torch.zeros(2)}, str(folder / name / "diffusion_pytorch_model.safetensors"))
    return folder


CASES = [
    (["train", "/etc/passwd"], "is not a recipe (a TOML file)"),
    (["train", "{files}/binary.bin"], "is not a recipe (a TOML file)"),
    (["train", "mnist-ddpm-linear", "--steps", "-5"], "--steps must be at least 1 (got -5)"),
    (["train", "mnist-ddpm-linear", "--steps", "0"], "--steps must be at least 1 (got 0)"),  # ran the full recipe
    (["train", "mnist-ddpm-linear", "--device", "cuda:7"], "not available here"),
    (["train", "mnist-ddpm-linear", "--device", "nonsense"], "Unknown device 'nonsense'"),
    (["train", "mnist-ddpm-linear", "--out", "/proc/x"], "--out /proc/x cannot be created"),
    (["train", "mnist-ddpm-linear", "--out", "{files}/a-file"], "is a file; name a folder"),
    (["publish", "mnist-lenet", "--repo-id", "../../etc/passwd", "--dry-run"], "is not a Hugging Face repo id"),
    (["publish", "mnist-lenet", "--repo-id", "me/lenet"], "Publishing needs the Hub, and HF_HUB_OFFLINE is set"),
    (["--manifest", "/nonexistent", "list"], "cannot be read (No such file or directory)"),
    (["--manifest", "{files}/binary.bin", "list"], "cannot be read (it is not UTF-8 text)"),
    (["info", "no-such-model"], "The zoo has no model or data set 'no-such-model'"),
    (["compare", "{files}/deep"], "config.json nests deeper than 32 levels"),
    (["compare", "{files}/negative"], "block_out_channels must be whole numbers from 1 to 65,536"),
    (["compare", "mnist-ddpm-linear", "mnist-lenet"], "mnist-lenet is a classifier model, not a diffusion model"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "sentence"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_command_lines_get_one_sentence_and_status_2(files, tmp_path, args, sentence):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "zoo", *(a.format(files=files) for a in args)]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and sentence in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "runs").exists()  # nothing was trained


@pytest.mark.slow
def test_publishing_to_an_unreachable_hub_gets_a_sentence(tmp_path):
    env = {
        **os.environ,
        "HF_TOKEN": "hf_test",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("HF_HUB_OFFLINE", None)
    argv = [sys.executable, "-m", "zoo", "publish", "mnist-lenet", "--repo-id", "me/lenet"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "could not be reached" in done.stderr.strip().splitlines()[-1]
