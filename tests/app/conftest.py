"""Fixtures the page tests share."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import tiny_unconditional_recipe
from zoo.train import train


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A short real `python -m zoo train` of a tiny unconditional MNIST UNet, checkpoints at steps 30, 60 and 90
    (about 6 s on one thread; a high learning rate, so that FD-LeNet falls clearly within those steps)."""
    tmp = tmp_path_factory.mktemp("trained")
    recipe = tmp / "trained.toml"
    settings = {"schedule": "linear", "steps": 90, "batch_size": 16, "lr": 0.03, "prediction_type": "epsilon"}
    recipe.write_text(tiny_unconditional_recipe("trained", **settings, sample_every=90))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp / "hf"))
        return train(str(recipe), tmp / "trained", checkpoint_every=30)


@pytest.fixture
def trained(app_env, trained_run, tmp_path):
    """runs/trained/run: the trained run, copied into this test's runs folder."""
    shutil.copytree(trained_run, tmp_path / "runs" / "trained")
    return tmp_path / "runs"
