"""The server settings in .streamlit/config.toml, as Streamlit itself reads them (`streamlit config show`)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _option(shown: str, name: str) -> str:
    line = next(x for x in shown.splitlines() if x.strip().startswith(f"{name} ="))
    return line.split("=", 1)[1].strip().strip('"')


def test_visitors_see_no_error_details_and_uploads_are_capped():
    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert _option(shown, "showErrorDetails") == "type"  # no messages, tracebacks or server paths in the page
    assert _option(shown, "maxUploadSize") == "20"
    assert _option(shown, "fileWatcherType") == "none"
