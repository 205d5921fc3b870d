"""Fixtures the zoo tests share."""

from __future__ import annotations

import pytest

from tests.helpers import tiny_pixel_recipe
from zoo.train import train


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A short real `python -m zoo train` of a tiny class-conditional MNIST UNet: sample grids at steps 3 and 6,
    checkpoints every 2 steps."""
    tmp = tmp_path_factory.mktemp("run")
    recipe = tmp / "tiny-cond.toml"
    recipe.write_text(
        tiny_pixel_recipe(
            "tiny-cond",
            schedule="cosine",
            steps=6,
            batch_size=8,
            lr=0.001,
            prediction_type="v_prediction",
            sample_every=3,
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp / "hf"))
        return train(str(recipe), tmp / "runs" / "tiny", checkpoint_every=2)
