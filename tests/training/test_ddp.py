"""Data-parallel training: `torchrun --nproc_per_node 2 -m zoo train RECIPE` on the CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.device import threads_for
from core.runs.ours import read_metrics
from tests.conftest import ROOT
from tests.helpers import tiny_pixel_recipe
from zoo.errors import ZooError
from zoo.train import train

TINY_RECIPE = tiny_pixel_recipe(
    "tiny-ddp", schedule="linear", steps=12, batch_size=16, lr=0.003, prediction_type="epsilon", sample_every=6
)


@pytest.mark.slow
def test_torchrun_two_processes_train_one_model(tmp_path, monkeypatch):
    monkeypatch.delenv("ATLAS_THREADS", raising=False)  # the policy's own count: the cores shared by the ranks
    recipe = tmp_path / "tiny-ddp.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("ATLAS_MANIFEST", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "zoo", "train", str(recipe), "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 alone reports (and writes)

    config = json.loads((out / "run" / "config.json").read_text())
    assert config["hardware"]["world_size"] == 2
    assert config["hardware"]["threads"] == threads_for("ddp-rank", ranks=2)
    assert config["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "global_batch_size": 32,
        "data_seed": "train.seed + rank",
    }
    # Both ranks hashed their weights after the last step: DDP's averaged gradients kept them bit-identical.
    assert config["replicas_identical"] is True

    records, notes = read_metrics(out / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10, 12] and not notes
    losses = [r["loss"] for r in records]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    assert config["final_loss"] == losses[-1]
    assert sorted(p.name for p in (out / "run" / "samples").iterdir()) == ["step_0000006.png", "step_0000012.png"]
    assert sorted(p.name for p in (out / "run" / "checkpoints").iterdir()) == ["step_0000006", "step_0000012"]

    weights = load_file(str(out / "diffusion_pytorch_model.safetensors"))
    assert weights and all(torch.isfinite(w.float()).all() for w in weights.values())
    assert json.loads((out / "config.json").read_text())["_class_name"] == "UNet2DModel"


def test_epoch_recipes_refuse_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ZooError, match="only pixel and latent recipes"):
        train("mnist-vae-2d")
