"""The bundled few-step models on the pages (the progressive student and the one reflowed from it): the Samplers
page starts each at its own sampler and step count, and Compare checkpoints samples it beside its teacher from the
same noise, each as its own pipeline would."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from zoo.registry import MANIFEST

STUDENTS, TEACHER = ("mnist-flow-pd", "mnist-flow-pd-reflow"), "mnist-flow"


@pytest.mark.parametrize("student", STUDENTS)
def test_the_samplers_page_starts_the_student_at_one_euler_step(app_env, monkeypatch, student):
    monkeypatch.setenv("ATLAS_MANIFEST", str(MANIFEST))
    at = AppTest.from_file(str(ROOT / "app_pages" / "samplers.py"), default_timeout=120).run()
    at.selectbox(key="smp-model").set_value(student).run()
    assert not at.exception
    assert at.selectbox(key="smp-sampler").value == "euler" and at.number_input(key="smp-steps").value == 1
    assert any("made for 1 step" in c.value for c in at.caption)
    # set, not cleared: a browser sends a cleared widget's old value back with the next click
    assert (at.session_state["smp-sampler"], at.session_state["smp-steps"]) == ("euler", 1)
    at.button(key="smp-go").click().run()
    assert not at.exception and at.subheader[0].value.startswith("Euler, 1 step")
    at.selectbox(key="smp-model").set_value(TEACHER).run()
    assert (at.session_state["smp-sampler"], at.session_state["smp-steps"]) == ("dpmpp_2m", 20)
    assert at.selectbox(key="smp-sampler").value == "dpmpp_2m" and at.number_input(key="smp-steps").value == 20


@pytest.mark.parametrize("student", STUDENTS)
def test_compare_checkpoints_samples_the_student_at_its_own_step_beside_its_teacher(app_env, monkeypatch, student):
    monkeypatch.setenv("ATLAS_MANIFEST", str(MANIFEST))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare_checkpoints.py"), default_timeout=300).run()
    at.multiselect(key="ck-models").set_value([TEACHER, student])
    at.number_input(key="ck-steps").set_value(4)
    at.slider(key="ck-batch").set_value(2).run()
    at.button(key="ck-go").click().run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.caption]
    assert any("Euler (its own), its own 1 step" in c for c in captions)
    assert "NFE 1" in " ".join(captions) and "NFE 4" in " ".join(captions)
