"""The Guidance page through Streamlit's AppTest, on the bundled models: the scale sweep on both conditional
models (with and without a guidance interval), stale and stopped results, an empty interval, and the latent
plane's three fields."""

from __future__ import annotations

import math

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.labs import guidance as gd
from tests.app.helpers import figures, open_page


def _sweep_results(at):
    return next(d.value for d in at.dataframe if "FD-LeNet" in d.value.columns)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    return open_page("guidance", monkeypatch)


def _sweep(at: AppTest, source: str, n: int, scales: list[float], interval: bool = True) -> AppTest:
    at.radio(key="gd-source").set_value(source).run()
    at.select_slider(key=f"gd-n-{source}").set_value(n)
    at.multiselect(key="gd-scales").set_value(scales)
    at.toggle(key="gd-use-interval").set_value(interval)
    at.slider(key="gd-steps").set_value(10).run()
    at.button(key="gd-go").click().run()
    assert not at.exception and not at.error
    return at


def test_a_latent_sweep_with_an_interval_reads_more_guidance_as_more_accurate_and_less_diverse(app):
    assert any("press **Sweep**" in i.value for i in app.info)
    _sweep(app, "latent", 50, [0.0, 3.0])
    table = _sweep_results(app)
    assert list(table["Series"]) == ["always"] * 2 + ["sigma in (0.28, 5.42]"] * 2 + ["real held-out digits"]
    always = table[table["Series"] == "always"].set_index("Scale w")
    assert always.loc["3", "Accuracy"] > always.loc["0", "Accuracy"] + 0.3
    assert always.loc["3", "Diversity"] < always.loc["0", "Diversity"]
    real = table.iloc[-1]
    assert real["Scale w"] == "—"  # no scale for real digits (never a literal None)
    assert real["Accuracy"] > 0.9 and real["FD-LeNet"] < always["FD-LeNet"].min()  # the real digits' level
    curves = figures(app)[0]
    assert {t["name"] for t in curves["data"]} == {"always", "sigma in (0.28, 5.42]"}
    strips = [c for element in app.get("image") for c in element.captions]
    assert strips == ["w = 0", "w = 3"] * 2  # one row of ten digits per scale and series
    app.slider(key="gd-steps").set_value(12).run()
    assert any("other settings" in c.value for c in app.caption)  # the old numbers are labelled, not passed off
    assert not app.warning


def _stopped_after(monkeypatch, scales: int) -> None:
    """The sweep as a Stop ends it: the run ends (as Streamlit ends it, at a redraw) while the scale after the
    first `scales` is measured."""
    real_sweep, done = gd.sweep, []

    def sweep(*args, **kwargs):
        for row in real_sweep(*args, **kwargs):
            if not math.isnan(row.scale):  # the real digits' row comes first
                if len(done) == scales:
                    raise StopException()
                done.append(row)
            yield row

    monkeypatch.setattr(gd, "sweep", sweep)


def test_a_sweep_draws_each_scale_as_it_is_measured_and_a_stop_keeps_them_with_a_sentence(app, monkeypatch):
    _stopped_after(monkeypatch, 3)
    _sweep(app, "latent", 20, [0.0, 3.0])  # the run that the Stop ends, while the fourth scale is measured
    assert not any("press **Sweep**" in i.value for i in app.info)  # the hint went when the sweep began
    live = figures(app)  # drawn while the sweep ran, before the Stop: three measures a scale
    assert len(live) == 1 and sum(len(t["x"]) for t in live[0]["data"]) in (3, 6, 9)
    app.run()  # the Stop's own run
    assert [w.value for w in app.warning] == [
        "Stopped after 3 of 4 scales of the two series; press **Sweep** to measure them all."
    ]
    table = _sweep_results(app)
    assert list(table["Series"]) == ["always"] * 2 + ["sigma in (0.28, 5.42]", "real held-out digits"]
    strips = [c for element in app.get("image") for c in element.captions]
    assert strips == ["w = 0", "w = 3", "w = 0"]  # the digits of the scales kept, none of the stopped one
    sweep = app.session_state["memo:gd-sweep"].value
    assert not sweep.tally.add()  # the stopped run, finishing its scale now, would keep nothing
    app.run()
    assert len(_sweep_results(app)) == 4 and "3 of 4" in app.warning[0].value


def test_a_stop_before_the_first_scale_says_so(app, monkeypatch):
    _stopped_after(monkeypatch, 0)
    _sweep(app, "latent", 20, [0.0, 3.0], interval=False)
    app.run()
    assert [w.value for w in app.warning] == [
        "Stopped before any scale was measured; press **Sweep** to measure them all."
    ]
    assert not app.info and not app.dataframe and not figures(app)[:-1]  # no hint, and only the fields' figure


def test_a_pixel_sweep_without_an_interval(app):
    _sweep(app, "pixel", 20, [1.0, 5.0], interval=False)
    table = _sweep_results(app)
    assert list(table["Series"]) == ["always", "always", "real held-out digits"]
    assert (table["Samples"] == 20).all() and table["Accuracy"].iloc[1] >= table["Accuracy"].iloc[0]


def test_an_empty_interval_and_no_scales_get_sentences(app):
    app.select_slider(key="gd-interval").set_value((1.0, 1.0)).run()
    assert any("interval is empty" in w.value for w in app.warning)
    app.multiselect(key="gd-scales").set_value([]).run()
    assert not app.exception and app.button(key="gd-go").disabled
    assert any("at least one scale" in i.value for i in app.info)


def test_the_latent_fields_show_the_guided_mix_at_every_noise_level(app):
    fields = figures(app)[-1]
    titles = [a["text"] for a in fields["layout"]["annotations"]]
    assert titles == ["conditional: class 3", "unconditional", "guided: w = 3"]
    assert len(fields["frames"]) == 8
    app.selectbox(key="gd-field-class").set_value(7)
    app.select_slider(key="gd-field-sigmas").set_value((2.0, 2.0)).run()
    fields = figures(app)[-1]
    assert fields["layout"]["annotations"][0]["text"] == "conditional: class 7"
    assert len(fields["frames"]) == 1 and not app.exception
