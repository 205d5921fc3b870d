"""What the page tests share: opening a page offline, and reading its figures, tables and image captions."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page(name: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """app_pages/<name>.py run once, offline, with neither an exception nor an error on it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=300).run()
    assert not at.exception and not at.error
    return at


def figures(at: AppTest) -> list[dict]:
    """Every plotly figure on the page, as its JSON."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def table(at: AppTest, column: str):
    """The first data frame on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def captions(at: AppTest) -> list[str]:
    """The captions of every image on the page, in order."""
    return [caption for element in at.get("image") for caption in element.captions]
