"""The Latent MNIST page through Streamlit's AppTest, with the bundled VAE, latent model and classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.helpers import plotly_array

PAGE = str(ROOT / "app_pages" / "latent.py")


def _figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _traces(at, kind: str) -> list[dict]:
    return [t for f in _figures(at) for t in f["data"] if t["type"] == kind]


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception and not at.error
    return at


def test_bundled_vae_replay_manifold_and_densities(app):
    replay = next(f for f in _figures(app) if f.get("frames"))
    assert len(replay["frames"]) > 10  # the bundled VAE's saved snapshots
    assert replay["layout"]["sliders"][0]["steps"][0]["label"] == "0"
    assert len(replay["frames"][-1]["data"]) == 10  # one trace per class
    # It opens on the trained plane, and Play replays it from the first snapshot (not "from the last": nothing)
    assert replay["layout"]["sliders"][0]["active"] == len(replay["frames"]) - 1
    assert replay["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["fromcurrent"] is False
    assert not _traces(app, "surface") and _traces(app, "contour")  # the 2-D map; the 3-D view on request
    app.toggle(key="kde-3d").set_value(True).run()
    surfaces = _traces(app, "surface")
    assert sorted(t["name"] for t in surfaces) == [str(c) for c in range(10)]
    assert plotly_array(surfaces[0]["z"]).shape == (40, 40)  # the default 80 x 80 mesh, every other point drawn
    # The manifold: 15 x 15 decoded digits; the picked point's digit.
    assert len(app.get("image")) == 2  # the manifold grid and the picked point's digit
    app.slider(key="manifold-n").set_value(6).run()
    app.radio(key="manifold-spacing").set_value("linear").run()
    assert not app.exception and not app.error
    # Classes can be toggled off; the 3-D view then draws only the rest.
    app.pills(key="kde-classes").set_value([1, 7]).run()
    assert sorted(t["name"] for t in _traces(app, "surface")) == ["1", "7"]


def test_conditional_and_unconditional_samples_with_paths_strips_and_readout(app):
    app.slider(key="ldm-n").set_value(6)
    app.slider(key="ldm-sample-steps").set_value(12)
    app.selectbox(key="ldm-class").set_value(7)
    app.button(key="ldm-generate").click().run()
    assert not app.exception and not app.error
    result = app.session_state["memo:latent-result"].value
    assert result.paths.path.shape == (13, 6, 2)  # 12 steps and the finished points
    assert result.strips.shape == (6 * 30 - 2, 10 * 30 - 2)  # a strip per sample, ten shown steps
    table = app.dataframe[0].value
    assert list(table["Requested"]) == ["7"] * 6
    assert (table["Classifier reads"] == 7).mean() >= 5 / 6  # guidance 3 on the bundled model
    assert app.metric[0].label == "Read as the requested class"
    # The caption names the sampler by its title, as the picker does, not by its key (dpmpp_2m).
    assert any(c.value.startswith("DPM-Solver++(2M), 12 steps, seed 0, ") for c in app.caption)
    paths = next(t for t in _traces(app, "scatter") if t["name"] == "paths")
    assert np.isnan(plotly_array(paths["x"])).sum() == 6  # one line per sample
    app.selectbox(key="ldm-class").set_value(-1)
    app.button(key="ldm-generate").click().run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert list(table["Requested"]) == ["none"] * 6 and not app.metric
    assert app.session_state["memo:latent-result"].value.paths.label["class"] is None


def test_train_a_tiny_vae_then_a_latent_model_for_it(app):
    app.radio(key="latent-vae-source").set_value("trained").run()
    assert any("Train VAE" in i.value for i in app.info)
    app.number_input(key="vae-epochs").set_value(1)
    app.select_slider(key="vae-batch").set_value(512)
    app.button(key="vae-train").click().run()
    assert not app.exception and not app.error
    vae = app.session_state["latent_vae"]
    assert not vae.bundled and vae.records[-1]["step"] == 8  # 4,500 digits / 512 per batch, one epoch
    assert vae.records[-1]["kl"] > 0 and np.isfinite(vae.records[-1]["reconstruction"])
    assert vae.snapshots.steps[0] == 0 and len(vae.snapshots.steps) == 2
    assert vae.planned_steps == 8 and not any("stopped at step" in m.value for m in app.markdown)  # it finished
    # The bundled latent model belongs to the bundled VAE: only "train here" is offered now.
    assert app.radio(key="ldm-source-False").options == ["Train one here"]
    assert any("Press **Train latent model**" in i.value for i in app.info)
    app.number_input(key="ldm-steps").set_value(100)
    app.button(key="ldm-train").click().run()
    assert not app.exception and not app.error
    trainer = app.session_state["memo:latent-model"].value
    assert trainer.trainer.step == 100 and trainer.log.config["vae"] == vae.name
    runs = app.session_state["session_runs"]
    assert [r.config["kind"] for r in runs] == ["vae", "latent"] and runs[1].metrics[-1]["step"] == 100
    logs = AppTest.from_file(str(ROOT / "app_pages" / "training_logs.py"), default_timeout=120)
    logs.session_state["session_runs"] = runs  # what this session's Training logs page gets
    logs.run()
    logs.multiselect(key="logs-runs").set_value([f"{r.name} · this session" for r in runs]).run()
    assert not logs.exception and not logs.error and logs.get("plotly_chart")
    app.slider(key="ldm-n").set_value(3)
    app.button(key="ldm-generate").click().run()
    assert not app.exception and not app.error
    assert app.session_state["memo:latent-result"].value.paths.samples.shape == (3, 2)


def test_trainings_over_the_servers_budget_are_refused_before_they_start(app, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    app.radio(key="latent-vae-source").set_value("trained").run()
    assert any("over its limit of 1 s" in w.value for w in app.warning)
    assert app.button(key="vae-train").disabled and "latent_vae" not in app.session_state
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "300")
    app.number_input(key="vae-epochs").set_value(1)
    app.select_slider(key="vae-batch").set_value(512)
    app.run()
    app.button(key="vae-train").click().run()
    assert not app.exception and "latent_vae" in app.session_state
    assert any("of training on this server" in c.value for c in app.caption)
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    app.run()
    assert app.button(key="ldm-train").disabled and not app.exception


def test_a_manifest_without_the_bundled_vae_gets_a_sentence(app_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("no model 'mnist-vae-2d'" in e.value for e in at.error)
