"""The Training logs and Compare checkpoints pages through AppTest."""

from __future__ import annotations

import json

import torch
from streamlit.testing.v1 import AppTest

from core.data.images import tile, to_uint8
from core.runs.record import Run
from core.runs.writer import RunWriter
from tests.conftest import ROOT
from tests.helpers import write_long_log
from ui.compare_checkpoints.state import digits_band, digits_prdc

LOGS = str(ROOT / "app_pages" / "training_logs.py")
CHECKPOINTS = str(ROOT / "app_pages" / "compare_checkpoints.py")


def test_logs_page_lists_bundled_runs_and_shows_curves_samples_and_settings(app_env):
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    assert not at.exception
    runs = at.multiselect(key="logs-runs")
    assert any(label.startswith("mnist-lenet · bundled") for label in runs.options)
    runs.set_value(["mnist-lenet · bundled"]).run()
    assert not at.exception
    assert at.multiselect(key="logs-keys").value == ["loss"]
    assert len(at.get("plotly_chart")) == 1
    assert any("training time" in c.value for c in at.caption)
    assert not any(h.value == "Samples during training" for h in at.subheader)  # a classifier saves no grids
    at.multiselect(key="logs-keys").set_value(["loss", "train_accuracy"]).run()
    at.toggle(key="logs-log").set_value(True).run()
    at.radio(key="logs-x").set_value("seconds").run()
    assert len(at.get("plotly_chart")) == 2 and not at.exception


def test_logs_page_reads_a_100k_line_run_with_a_broken_tail_and_notes_odd_folders(app_env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_long_log(runs / "big" / "run")
    (runs / "not-a-run").mkdir()
    monkeypatch.setenv("ATLAS_RUNS", str(runs))
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    at.multiselect(key="logs-runs").set_value(["big · runs folder"]).run()
    assert not at.exception
    assert any("not-a-run is not a run" in c.value for c in at.caption)
    assert any("line 100001 is not valid JSON" in i.value for i in at.info)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sum(len(trace["x"]) for trace in spec["data"]) <= 2 * 2002  # downsampled, both traces


def test_logs_page_reads_only_under_the_allowed_roots(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    for typed in ("/", "/etc", "/" + "x" * 1023):  # the server's own folders are neither listed nor read
        at.text_input(key="logs-folder").set_value(typed).run()
        assert not at.exception and len(at.error) == 1 and "reads runs only from" in at.error[0].value
        assert not any("is not a run" in c.value for c in at.caption)
    assert any("mnist-lenet · bundled" in o for o in at.multiselect(key="logs-runs").options)  # the rest still works


def test_logs_page_compares_runs_and_includes_this_sessions_toy_runs(app_env):
    at = AppTest.from_file(LOGS, default_timeout=120)
    config = {"kind": "toy", "lr": 0.01, "width": 64}
    at.session_state["session_runs"] = [
        Run(name="toy-1", source="this session", config=config, metrics=[{"step": 10, "loss": 1.0}])
    ]
    at.run()
    labels = at.multiselect(key="logs-runs").options
    assert "toy-1 · this session" in labels
    at.multiselect(key="logs-runs").set_value(["toy-1 · this session", "mnist-lenet · bundled"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["differs"].all()  # "only the settings that differ" is on by default
    assert len(at.get("download_button")) == 1


def test_compare_checkpoints_side_by_side_with_a_failing_one_in_its_column(app_env):
    at = AppTest.from_file(CHECKPOINTS, default_timeout=120).run()
    assert not at.exception
    at.multiselect(key="ck-models").set_value(["tiny-uncond", "tiny-cond", "hub-only"]).run()
    at.number_input(key="ck-steps").set_value(3).run()
    at.slider(key="ck-batch").set_value(4).run()
    at.button(key="ck-go").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "needs a connection" in at.error[0].value  # only the Hub model fails
    assert len(at.get("image")) == 2 and sum("images/s" in c.value for c in at.caption) == 2
    at.slider(key="ck-n").set_value(100).run()
    at.button(key="ck-measure").click().run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert list(rows["checkpoint"])[:2] == ["Tiny unconditional", "Tiny conditional"] and (rows["FD-LeNet"] > 0).all()
    assert (rows["± (bootstrap SE)"][:2] > 0).all()  # each distance with its error
    # and what real digits read, measured the same way at the same size (the band's middle; its range named)
    band = digits_band(100)
    assert rows["checkpoint"].iloc[2] == f"real digits (FD-LeNet {band.span(1)} over 10 draws)"
    assert rows["samples"].iloc[2] == 100
    assert rows["FD-LeNet"].iloc[2] == round(band.mean, 2) and band.sizes[0] == 100
    assert (rows["FD-LeNet"][:2] > band.high).all()  # untrained tiny models are far from real digits
    # precision, recall, density and coverage beside it, each with its SE; real digits' measured the same way
    real = digits_prdc(100)
    assert (real.real, real.fake) == (100, 100)
    for name in ("precision", "recall", "density", "coverage"):
        assert rows[name].iloc[2] == round(getattr(real, name), 3)
        assert rows[f"{name} SE"].iloc[2] == round(getattr(real, f"{name}_se"), 3)
    assert rows[["precision", "recall", "coverage"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (rows["density"] > 0).all() and (rows["coverage"][:2] < real.coverage).all()  # noise covers few digits


def test_compare_checkpoints_refuses_a_shape_mismatch(app_env, tmp_path, monkeypatch):
    at = AppTest.from_file(CHECKPOINTS, default_timeout=120).run()
    at.multiselect(key="ck-models").set_value(["tiny-uncond"]).run()
    assert "at least two" in at.info[0].value


def test_logs_page_replays_sample_grids_on_a_slider_and_as_an_animation(app_env, tmp_path, monkeypatch):
    writer = RunWriter(tmp_path / "runs" / "with-samples" / "run", {"recipe": "with-samples"})
    for step in (100, 200, 300):
        writer.log({"step": step, "loss": 1 / step})
        writer.save_samples(step, tile(to_uint8(torch.rand(4, 1, 8, 8) * 2 - 1)))
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    at.multiselect(key="logs-runs").set_value(["with-samples · runs folder"]).run()
    slider = at.select_slider(key="logs-step-with-samples")
    assert slider.options == ["100", "200", "300"] and slider.value == 300
    slider.set_value(200).run()
    assert at.get("image")[0].captions == ["step 200"]
    at.toggle(key="logs-animate").set_value(True).run()
    assert not at.exception and len(at.get("image")) == 2


def test_compare_checkpoints_caps_its_work_before_it_starts(app_env):
    at = AppTest.from_file(CHECKPOINTS, default_timeout=120).run()
    at.multiselect(key="ck-models").set_value(["tiny-uncond", "tiny-cond"]).run()
    at.selectbox(key="ck-sampler").set_value("heun")
    at.number_input(key="ck-steps").set_value(1000)
    at.slider(key="ck-batch").set_value(36)
    at.slider(key="ck-n").set_value(1000).run()
    at.button(key="ck-go").click().run()  # 2 x 36 x 1,999 evaluations: about 10 minutes of a core, before
    assert not at.exception and "143,928 image evaluations (at most 20,000)" in at.error[0].value
    assert not at.get("image")  # nothing sampled
    at.button(key="ck-measure").click().run()  # 2 x 1,000 x 1,999: hours, before
    assert not at.exception and any("3,998,000 image evaluations (at most 60,000)" in e.value for e in at.error)
    assert not at.dataframe
