"""Drawings as a client can forge them: the canvas's JSON reaches the server as data, so every malformed shape
gets a sentence (before: uncaught ValueError, RuntimeError or AttributeError), and a huge drawing is refused
by its size before any of it is converted."""

from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from core.data.drawing import MAX_COMMANDS, MAX_OBJECTS, canvas_strokes
from core.errors import BadInputError

STROKE = {"type": "path", "path": [["M", 10, 10], ["L", 50, 60]], "left": 10, "top": 10}


@pytest.mark.parametrize(
    ("drawing", "match"),
    [
        ({"objects": [{"type": "path", "path": [["M", 0, 0], ["Q", 5]]}]}, "a Q command has 1 numbers, not 4"),
        ({"objects": [{"type": "path", "path": [["M", math.nan, 0]]}]}, "a path coordinate is nan"),
        ({"objects": [{"type": "path", "path": [["M", math.inf, 0]]}]}, "a path coordinate is inf"),
        ({"objects": [{"type": "path", "path": [["M", "a", 0]]}]}, "a path coordinate is not a number"),
        ({"objects": [{"type": "path", "path": [["X", 0, 0]]}]}, "not one of M, L, Q, C, Z"),
        ({"objects": [{"type": "path", "path": [[]]}]}, "not one of M, L, Q, C, Z"),
        ({"objects": [{"type": "path", "path": "M 0 0"}]}, "path is not a list"),
        ({"objects": [{"type": "circle", "left": 5, "top": 5, "radius": "abc"}]}, "radius is not a number"),
        ({"objects": [{"type": "line", "x1": None, "y1": 0, "x2": [1], "y2": 0}]}, "x2 is not a number"),
        ({"objects": [{**STROKE, "scaleX": 1e300}]}, "scaleX is 1e"),
        ({"objects": [{**STROKE, "angle": True}]}, "angle is not a number"),
        ({"objects": "abc"}, "objects are not a list of shapes"),
        ({"objects": [1, 2]}, "objects are not a list of shapes"),
        ("abc", "not a JSON object"),
        ({"objects": [{"type": "circle", "left": 10**400, "top": 1, "radius": 2}]}, "left is too large"),
        ({"objects": [{"type": "path", "path": [["M", -(10**400), 0]]}]}, "a path coordinate is too large"),
        ({"objects": [STROKE] * (MAX_OBJECTS + 1)}, f"at most {MAX_OBJECTS:,}"),
        ({"objects": [{"type": "path", "path": [["L", 1, 1]] * (MAX_COMMANDS + 1)}]}, "pen movements"),
    ],
)
def test_forged_drawings_get_a_sentence(drawing, match):
    with pytest.raises(BadInputError, match=match):
        canvas_strokes(drawing)


def test_a_drawing_is_converted_once_however_often_the_page_reruns(monkeypatch):
    """20,000 strokes used to cost 7.5 s on every rerun: they were converted twice each time."""
    import ui.toy.data as data

    calls = []
    real = data.canvas_strokes
    monkeypatch.setattr(data, "canvas_strokes", lambda d: calls.append(1) or real(d))

    def page(drawing):
        import streamlit as st

        from ui.common.widgets import attempt
        from ui.toy.data import _strokes_once

        found = attempt(_strokes_once, drawing)  # as the page does: a sentence for a BadInputError
        if found is not None:
            st.write(f"{len(found[1].lines)} strokes")

    drawing = {"objects": [STROKE] * MAX_OBJECTS}
    at = AppTest.from_function(page, args=(drawing,)).run()
    for _ in range(3):
        at.run()
    assert not at.exception and at.markdown[0].value == f"{MAX_OBJECTS} strokes" and len(calls) == 1
    forged = AppTest.from_function(page, args=({"objects": [{**STROKE, "angle": math.nan}]},)).run()
    assert not forged.exception and "JSON cannot" in forged.error[0].value
