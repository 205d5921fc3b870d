"""The toy lab's section 6, few steps and one step (ui/toy/few_step.py), in a real AppTest: it trains with small
settings and shows its table and charts, checks one-step maps against the exact flow map on a mixture, keeps the
finished models when stopped mid-way, runs the Gaussian study, and answers odd settings with sentences."""

from __future__ import annotations

import json

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.labs import few_step as fs
from tests.conftest import ROOT

PAGE = str(ROOT / "app_pages" / "toy.py")


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception and not at.error
    return at


def _setup(at: AppTest, data_set: str, methods: list[str], steps: int = 100) -> AppTest:
    at.selectbox(key="toy-set-2").set_value(data_set).run()
    at.number_input(key="toy-builtin-n").set_value(1000)
    at.select_slider(key="toy-batch").set_value(256)
    at.multiselect(key="toy-fs-methods").set_value(methods)
    at.select_slider(key="toy-fs-steps").set_value(steps)
    at.select_slider(key="toy-fs-n").set_value(500)
    return at.run()


def _titles(at: AppTest) -> list[str]:
    """The subplot titles of every figure on the page."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return [a.get("text", "") for s in specs for a in s["layout"].get("annotations", [])]


def _table(at: AppTest):
    return next(d.value for d in at.dataframe if "SW2 @ 1" in d.value.columns and "Crossings" in d.value.columns)


def test_the_section_trains_and_shows_its_table_ladder_samples_and_pairs(app):
    at = _setup(app, "moons", ["shortcut", fs.COUPLED], steps=200)
    at.button(key="toy-fs-go").click().run()
    assert not at.exception and not at.error
    table = _table(at)
    assert list(table["Method"]) == [fs.TITLES[m] for m in (fs.TEACHER, "shortcut", fs.COUPLED)]
    assert {f"SW2 @ {k}" for k in (1, 2, 4, 8)} <= set(table.columns) and "MMD, two fresh sets" in table.columns
    assert table["Crossings"].isna().tolist() == [False, True, False]  # the shortcut model trains on no coupling
    results = list(at.session_state["memo:toy-few-step"].value.results.values())
    said = " ".join(i.value for i in at.info)
    for r in results[1:]:  # each method beats the teacher's one step, or a sentence says it does not
        assert fs.beats_teacher(r, results[0]) != (f"{r.title} does not beat the teacher" in said)
    titles = _titles(at)
    assert sum("cross" in t for t in titles) == 2  # the pairs of the teacher's and the coupled flow's training
    assert fs.TITLES["shortcut"] in titles  # its one-step samples among the small multiples
    assert not any("exact flow map" in m.value for m in at.markdown)  # moons: no exact law


def test_on_a_mixture_each_one_step_map_meets_the_exact_flow_map(app):
    at = _setup(app, "eight_gaussians", ["meanflow"])
    at.button(key="toy-fs-go").click().run()
    assert not at.exception and not at.error
    fields = at.session_state["memo:toy-few-step-fields"]
    assert set(fields.value) == {fs.TEACHER, "meanflow"} and fields.key[1] == 0.8
    assert any(c.value.startswith("MeanFlow's u(z, 0, t)") for c in at.caption)
    at.slider(key="toy-fs-t").set_value(0.5).run()
    assert not at.exception and at.session_state["memo:toy-few-step-fields"].key[1] == 0.5


def test_a_stop_mid_way_keeps_the_models_finished(app, monkeypatch):
    real = fs.compare_few_step

    def stopped_after_two(*args, **kwargs):
        for k, found in enumerate(real(*args, **kwargs)):
            yield found
            if k == 1:
                raise StopException  # how Streamlit ends the script at a Stop

    monkeypatch.setattr(fs, "compare_few_step", stopped_after_two)
    at = _setup(app, "moons", ["shortcut", "progressive"])
    at.button(key="toy-fs-go").click().run()
    at.run()  # the Stop's own run
    assert not at.exception and not at.error
    assert any("Stopped after 2 of 3 models" in w.value for w in at.warning)
    assert list(_table(at)["Method"]) == [fs.TITLES[fs.TEACHER], fs.TITLES["shortcut"]]


def test_the_gaussian_study_charts_the_error_against_the_batch(app):
    at = app
    at.multiselect(key="toy-fs-sizes").set_value([1, 64])
    at.select_slider(key="toy-fs-study-steps").set_value(100)
    at.button(key="toy-fs-study-go").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Pairs coupled at once" in d.value.columns)
    assert list(table["Pairs coupled at once"]) == [1, 64]
    errors = list(table["One-step map error"])
    assert errors[1] < errors[0]


def test_the_labs_flow_model_can_be_the_teacher(app):
    at = _setup(app, "moons", ["shortcut"])
    assert not any(c.key == "toy-fs-reuse" for c in at.checkbox)  # no lab model yet: nothing to reuse
    at.radio(key="toy-target").set_value("flow_prediction")
    at.number_input(key="toy-steps").set_value(200).run()
    at.button(key="toy-train").click().run()
    lab = at.session_state["toy_run"]
    assert at.checkbox(key="toy-fs-reuse").value  # offered, and on by default
    at.button(key="toy-fs-go").click().run()
    assert not at.exception and not at.error
    assert _table(at)["Model"].iloc[0] == lab.name and lab.step == 200  # measured as it was, not trained again


def test_odd_settings_get_sentences(app, monkeypatch):
    at = _setup(app, "moons", [])
    at.multiselect(key="toy-fs-sizes").set_value([]).run()
    assert at.button(key="toy-fs-study-go").disabled  # no batch size: nothing to run
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    at.multiselect(key="toy-fs-methods").set_value(list(fs.CHOOSABLE))
    at.select_slider(key="toy-fs-steps").set_value(5000).run()
    assert not at.exception and at.button(key="toy-fs-go").disabled
    assert any("limit" in w.value for w in at.warning)
