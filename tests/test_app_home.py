"""The app's entry point and home page, run by Streamlit's own test harness."""

from __future__ import annotations

import torch
from streamlit.testing.v1 import AppTest

from core.samplers import SAMPLERS
from tests.conftest import ROOT


def test_entry_point_runs_the_home_page_with_device_and_engine():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Diffusion Atlas"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] in {"CPU", "CUDA", "MPS"}
    assert metrics["PyTorch"] == torch.__version__
    samplers = at.dataframe[0].value
    assert set(samplers["Key"]) == set(SAMPLERS)
    assert "Device:" in at.sidebar.caption[0].value
