"""The Inversion page through Streamlit's AppTest, on the bundled models: a point cloud's round trip and its
ladder, the latent plane against the steps and the guidance scale, digits (noise statistics, interpolation,
class swap, the error measurement), uploads, and bad uploads."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.diffusion.samplers import SAMPLERS
from core.labs import inversion as inv
from core.labs.guidance.sweep import SCALES
from tests import bad_inputs as bad
from tests.app.helpers import captions, figures, open_page, table
from tests.helpers import plotly_array
from ui.common.charts import log_ticks

MEASURE = inv.measure


def _error(at) -> float:
    """The round trip's RMS error at sigma_min, as the page states it."""
    line = next(m.value for m in at.markdown if m.value.startswith("RMS round-trip error"))
    return float(re.search(r"\*\*([0-9.e+-]+)\*\*", line).group(1))


@pytest.fixture
def app(monkeypatch) -> AppTest:
    return open_page("inversion", monkeypatch)


def _kept(at: AppTest, name: str):
    """What the page keeps in the session under memo `name` (ui/common/memo.py)."""
    return at.session_state[f"memo:{name}"].value


def _view(at: AppTest, name: str) -> AppTest:
    at.segmented_control(key="inv-view").set_value(name).run()
    assert not at.exception and not at.error
    return at


def test_a_point_cloud_goes_up_and_back_and_more_steps_bring_it_closer(app):
    coarse = _error(app)
    paths, _, ladder = figures(app)
    assert [t["name"] for t in paths["data"]] == ["path up", "inverted noise", "data", "sampled back"]
    assert len(plotly_array(paths["data"][2]["x"])) == 200  # every point's path is drawn
    legend = [t["name"] for t in ladder["data"]]
    deterministic = [n for n, spec in SAMPLERS.items() if not spec.stochastic]  # and DDIM, which is Euler
    assert len(legend) == len(deterministic) and all("slope" in n for n in legend)
    euler = float(re.search(r"slope ([0-9.]+)", legend[0]).group(1))
    assert legend[0].startswith("Euler") and 0.8 < euler < 1.3
    kept, trip = _kept(app, "inv-cloud-ladder"), _kept(app, "inv-cloud-trip")
    app.run()
    assert _kept(app, "inv-cloud-trip") is trip  # a rerun with the same settings does not run the points again
    app.selectbox(key="inv-cloud-sampler").set_value("dpmpp_2m").run()
    app.slider(key="inv-cloud-steps").set_value(64).run()
    assert _error(app) < coarse / 100
    assert _kept(app, "inv-cloud-ladder") is kept  # the ladder runs every sampler: not again for the page's one
    moments = table(app, "KS distance")
    assert list(moments[""]) == ["x", "y"] and (moments["std"].between(0.8, 1.2)).all()


def test_the_latent_plane_against_the_steps_and_the_guidance_scale(app):
    _view(app, "Latent MNIST plane")
    titles = [f["layout"].get("xaxis", {}).get("title", {}).get("text", "") for f in figures(app)]
    assert titles[2:] == ["denoiser evaluations each way (NFE)", "guidance scale w (both ways)"]
    by_scale = plotly_array(figures(app)[3]["data"][0]["y"])
    assert by_scale[-1] > 3 * by_scale[1]  # w = 8 against w = 1: a steeper field, a worse round trip
    ddim = plotly_array(next(t for t in figures(app)[2]["data"] if t["name"] == "DDIM")["y"])
    assert ddim[-1] < ddim[0] / 3
    ladder, by_scale, trip = _kept(app, "inv-lat-ladder"), _kept(app, "inv-lat-scale"), _kept(app, "inv-lat-trip")
    app.run()
    assert _kept(app, "inv-lat-trip") is trip  # the same settings: the digits are not run up and back again
    app.selectbox(key="inv-lat-sampler").set_value("heun").run()
    assert _kept(app, "inv-lat-trip") is not trip
    assert _kept(app, "inv-lat-ladder") is ladder  # its samplers are fixed: the page's sampler leaves it be
    assert {r.sampler for r in _kept(app, "inv-lat-scale")} == {"heun"} and {r.sampler for r in by_scale} != {"heun"}
    app.toggle(key="inv-lat-cond").set_value(False).run()
    assert not app.exception and len(figures(app)) == 3  # unconditional: no scale to sweep
    assert app.select_slider(key="inv-lat-scale").disabled


def test_digits_noise_interpolation_and_class_swap(app):
    _view(app, "MNIST digits")
    stats = table(app, "neighbour corr.")
    assert list(stats["image"]) == ["test digit #0", "test digit #1", "fresh N(0, I)"]
    fresh, digit = stats.iloc[2], stats.iloc[0]
    assert fresh["KS p-value"] > 0.01 and abs(fresh["neighbour corr."]) < 0.1
    assert digit["KS distance"] > 2 * fresh["KS distance"]  # an inverted digit is not white noise
    images = captions(app)
    assert any(c.startswith("spherical (slerp)") for c in images)
    assert any(c.startswith("classes 0 to 9") for c in images)
    norms = [float(re.search(r"norm ([0-9.]+)", c).group(1)) for c in images if "norm" in c]
    assert norms[0] > 0.95 and norms[1] < 0.85  # slerp keeps the norm; the straight line's midpoint is short
    trip, swap = _kept(app, "inv-px-result"), _kept(app, "inv-px-swap")
    app.slider(key="inv-px-frames").set_value(5).run()
    assert _kept(app, "inv-px-result") is trip and _kept(app, "inv-px-swap") is swap  # frames: interpolation only
    assert len(_kept(app, "inv-px-interp").spherical) == 5
    interpolated = _kept(app, "inv-px-interp")
    app.select_slider(key="inv-px-scale").set_value(2.0).run()
    assert _kept(app, "inv-px-interp") is interpolated  # inverted without a class: the scale leaves it be
    assert _kept(app, "inv-px-result") is not trip
    app.selectbox(key="inv-px-model").set_value("mnist-ddpm-linear").run()
    assert not app.exception and not app.error
    images = captions(app)
    assert not any(c.startswith("classes 0 to 9") for c in images)  # no classes to swap


def _measure(app: AppTest, steps: list[int]) -> AppTest:
    _view(app, "MNIST digits")
    app.slider(key="inv-px-m-images").set_value(2).run()
    app.multiselect(key="inv-px-m-samplers").set_value(["ddim"]).run()
    app.multiselect(key="inv-px-m-steps").set_value(steps).run()
    app.button(key="inv-px-measure").click().run()
    assert not app.exception and not app.error
    return app


def _stopped_after(monkeypatch, rows: int) -> None:
    """The measurement as a Stop ends it: the run ends (as Streamlit ends it, at a redraw) while the round trip
    after the first `rows` is measured."""
    real_measure = MEASURE

    def measure(*args, **kwargs):
        for k, row in enumerate(real_measure(*args, **kwargs)):
            if k == rows:
                raise StopException()
            yield row

    monkeypatch.setattr(inv, "measure", measure)


def test_measure_gives_the_error_against_steps_and_scale(app):
    _measure(app, [5, 50])
    rows = table(app, "RMS error, ODE")
    assert list(rows["Steps"]) == [5, 50] + [50] * 7  # the sweep runs at the page's sampler and steps
    assert list(rows["Scale w"]) == ["1", "1", *(f"{w:g}" for w in SCALES)]  # the step rows: the class, w = 1
    errors = [float(v.split(" ± ")[0]) for v in rows["RMS error, ODE"][:2]]
    assert errors[1] < errors[0]
    steps_figure = figures(app)[-2]
    assert steps_figure["layout"]["xaxis"]["tickvals"] == [5, 10, 20, 50]  # not a label at every integer
    errors = steps_figure["layout"]["yaxis"]["tickvals"]
    assert 2 <= len(errors) <= 8 and all(f"{t:.0e}"[0] in "125" for t in errors)  # 1-2-5 (or powers of ten)
    measured = _kept(app, "inv-measured")
    assert measured.plan.total == 9 and len(measured.rows) == 9 and not app.warning


def test_a_measurement_draws_each_round_trip_as_it_is_measured_and_a_stop_keeps_them(app, monkeypatch):
    _stopped_after(monkeypatch, 3)
    _measure(app, [5, 50])  # the run that the Stop ends, in the fourth round trip
    live = table(app, "RMS error, ODE")  # drawn while the measurement ran, before the Stop
    assert 1 <= len(live) <= 3 and list(live["Steps"]) == [5, 50, 50][: len(live)]
    app.run()  # the Stop's own run
    assert [w.value for w in app.warning] == ["Stopped after 3 of 9 round trips; Measure again for all of them."]
    rows = table(app, "RMS error, ODE")
    assert list(rows["Steps"]) == [5, 50, 50] and list(rows["Scale w"]) == ["1", "1", f"{SCALES[0]:g}"]
    assert not _kept(app, "inv-measured").tally.add()  # the stopped run, finishing its round trip, keeps nothing


def test_a_stop_before_the_first_round_trip_says_so_and_a_model_without_a_class_has_no_scale(app, monkeypatch):
    _view(app, "MNIST digits")
    app.selectbox(key="inv-px-class-Held-out digit").set_value("none").run()
    _stopped_after(monkeypatch, 0)
    _measure(app, [5])
    app.run()
    assert [w.value for w in app.warning] == [
        "Stopped before any round trip was measured; Measure again for all of them."
    ]
    assert not any("Press **Measure**" in i.value for i in app.info)
    monkeypatch.setattr(inv, "measure", MEASURE)
    _measure(app, [5])
    rows = table(app, "RMS error, ODE")
    assert list(rows["Steps"]) == [5] and list(rows["Scale w"]) == ["—"]
    assert any("no guidance scale applies" in c.value for c in app.caption)


def test_log_ticks_label_a_short_range_sparsely():
    assert log_ticks([4, 5, 9, 10]) == [5, 10]
    assert log_ticks([5, 9]) == [5, 9] and log_ticks([7]) == [7]
    assert log_ticks([1, 200]) == [1, 2, 5, 10, 20, 50, 100, 200]
    assert log_ticks([5, 9, 19, 99]) == [5, 10, 20, 50, 100]  # 100: just past the last point, in the padding
    assert log_ticks([3, 30_000]) == [10, 100, 1000, 10_000]  # only the powers where 1-2-5 would crowd


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_an_upload_is_inverted_and_a_bad_one_gets_a_sentence(app):
    _view(app, "MNIST digits")
    app.radio(key="inv-px-source").set_value("Upload").run()
    assert any("Upload a picture of a digit" in i.value for i in app.info)
    paper = np.full((60, 60), 240, dtype=np.uint8)
    paper[10:50, 27:33] = 20  # a dark "1" on white paper
    app.file_uploader(key="inv-px-upload").set_value(("one.png", _png(paper), "image/png")).run()
    assert not app.exception and not app.error
    stats = table(app, "neighbour corr.")
    assert stats.iloc[0]["image"] == "one.png (inverted: a light ground)"
    assert app.selectbox(key="inv-px-class-Upload").value == "none"  # an upload has no label of its own
    app.file_uploader(key="inv-px-upload").set_value(("broken.png", bad.truncated_png(), "image/png")).run()
    assert not app.exception and len(app.error) == 1 and "broken.png" in app.error[0].value
