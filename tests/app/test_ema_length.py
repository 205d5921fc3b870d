"""The Compare checkpoints page's Over EMA length tab: a real run's checkpoint rebuilt at post-hoc EMA lengths from
the snapshots its training saved, sampled from the same noise, measured against the length; runs without snapshots
and snapshots that lie get a sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from streamlit.testing.v1 import AppTest

from core.data.toy import TOY_SETS
from core.labs.compare import settings_for
from core.labs.samplers import run_sampler
from core.labs.toy import ToyRun, ToySettings, distances
from core.labs.toy import run_sampler as toy_sampler
from tests.conftest import ROOT
from ui.compare_checkpoints.ema_length import key_of
from zoo.loaders import load_model
from zoo.local import local_entry

PAGE = str(ROOT / "app_pages" / "compare_checkpoints.py")
TAB = 2  # Side by side, Over training, Over EMA length
RUN = "trained · runs folder"


def _chart(at: AppTest, title: str) -> dict:
    figures = [json.loads(c.proto.spec) for c in at.tabs[TAB].get("plotly_chart")]
    return next(f for f in figures if f["layout"].get("title", {}).get("text", "").startswith(title))


def _images(at: AppTest, folder, length: float) -> torch.Tensor:
    return at.session_state[f"memo:oe-result-{key_of(folder, length)}"].value.images


def _open(at: AppTest) -> AppTest:
    at.run()
    at.number_input(key="oe-steps").set_value(4)
    at.slider(key="oe-batch").set_value(3)
    at.multiselect(key="oe-lengths").set_value([0.03, 0.1, 0.2])
    return at.run()


def test_a_checkpoint_is_rebuilt_at_each_length_and_measured_against_it(trained):
    at = _open(AppTest.from_file(PAGE, default_timeout=300))
    assert not at.exception and not at.error
    assert at.selectbox(key="oe-run").value == RUN
    assert at.selectbox(key=f"oe-step-{RUN}").value == 90  # the last checkpoint by default
    fits = at.tabs[TAB].dataframe[0].value
    assert list(fits["σ_rel"]) == [0.03, 0.1, 0.2] and (fits["snapshots"] >= 2).all()
    assert any("2 streams (σ_rel 0.050, 0.100) at 3 steps (30-90)" in c.value for c in at.caption)
    at.button(key="oe-go").click().run()
    assert not at.exception and not at.error
    assert len(at.tabs[TAB].get("image")) == 3  # a row per length
    folder = trained / "trained" / "run" / "checkpoints" / "step_0000090"

    images = {r: _images(at, folder, r) for r in (0.03, 0.1, 0.2)}
    assert not torch.equal(images[0.03], images[0.2])  # the same noise, other weights
    at.slider(key="oe-n").set_value(100)
    at.button(key="oe-measure").click().run()
    assert not at.exception and not at.error
    fd = _chart(at, "FD-LeNet")
    assert fd["layout"]["xaxis"]["title"]["text"] == "EMA length σ_rel"
    assert list(fd["data"][0]["x"]) == [0.03, 0.1, 0.2] and np.isfinite(fd["data"][0]["y"]).all()
    csv = next(b for b in at.tabs[TAB].get("download_button") if "CSV" in b.proto.label)
    assert csv is not None


def test_the_stream_length_rebuilt_at_its_own_checkpoint_is_the_saved_stream(trained):
    """σ_rel 0.10 at step 90 is the 0.10 stream's own snapshot there: sampled from the same seed, it gives the
    images a model holding that snapshot's weights gives."""
    at = _open(AppTest.from_file(PAGE, default_timeout=300))
    at.button(key="oe-go").click().run()
    folder = trained / "trained" / "run" / "checkpoints" / "step_0000090"

    rebuilt = _images(at, folder, 0.1)
    model = load_model(local_entry(str(folder), trusted=True))
    model.module.load_state_dict(load_file(folder / "phema-0.100.safetensors"))
    own = run_sampler(model, settings_for(model, None, 4, 0, 3, None), every=5, keep=1).images
    torch.testing.assert_close(rebuilt, own, rtol=1e-4, atol=1e-4)


def test_runs_without_snapshots_and_snapshots_that_lie_get_a_sentence(trained):
    folder = trained / "trained" / "run" / "checkpoints" / "step_0000060"
    weights = load_file(folder / "phema-0.050.safetensors")
    save_file(weights, folder / "phema-0.050.safetensors", metadata={"sigma_rel": "0.05", "gamma": "2", "step": "60"})
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    assert [e.value for e in at.tabs[TAB].error] == [
        "step_0000060/phema-0.050.safetensors does not say a post-hoc EMA length, exponent and step that agree."
    ]
    for f in (trained / "trained" / "run" / "checkpoints").glob("*/phema-*"):
        f.unlink()
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception and any("No run with post-hoc EMA snapshots" in i.value for i in at.info)


def test_the_toy_labs_model_is_rebuilt_at_each_length_and_read_by_sw2(app_env):
    run = ToyRun(TOY_SETS["moons"].cloud(3000, seed=0), ToySettings(width=32), name="toy-3")
    run.train(1000)
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["toy_run"] = run
    at.session_state["session_runs"] = [run.log]
    at.run()
    label = "toy-3 · this session"
    at.selectbox(key="oe-run").set_value(label).run()
    assert at.selectbox(key="oe-step-toy-3").value == 1000
    at.multiselect(key="oe-lengths").set_value([0.03, 0.1, 0.2])
    at.number_input(key="oe-toy-steps").set_value(8)
    at.number_input(key="oe-toy-n").set_value(500).run()
    at.button(key="oe-toy-go").click().run()
    assert not at.exception and not at.error
    table = at.tabs[TAB].dataframe[-1].value
    assert list(table["sigma_rel"]) == [0.03, 0.1, 0.2] and list(table.columns)[:3] == ["sigma_rel", "SW2", "MMD"]
    # each row is its length's rebuilt model, sampled from the same noise: the page's numbers are those of a
    # sampling of that model by hand
    by_hand = toy_sampler(run, "heun", 8, 500, seed=0, path_points=1, at_step=1000, ema_length=0.1)
    assert table["SW2"][1] == pytest.approx(distances(by_hand, run, 0)["swd"], abs=1e-4)
    dist = _chart(at, "Distance to fresh data")
    assert dist["layout"]["xaxis"]["type"] == "log" and list(dist["layout"]["xaxis"]["ticktext"]) == [
        "0.03",
        "0.1",
        "0.2",
    ]
