"""End-to-end fixtures: the real app under `streamlit run` on 127.0.0.1, offline, and Debian's chromium.

Locally the browser tests skip when /usr/bin/chromium or Playwright is missing; with CI set they fail.
Screenshots go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
BROWSER_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",  # WebGL in software: the 3-D plots draw without a GPU
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "Playwright for Python is not installed"
    else:
        missing = "" if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: the end-to-end tests must run in CI.")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`streamlit run streamlit_app.py` on a free port, offline, with its own empty runs folder and HF cache."""
    _need_browser()
    port = _free_port()
    home = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(home / "hf"), "ATLAS_RUNS": str(home / "runs")}
    env.pop("ATLAS_MANIFEST", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the app did not start:\n{(home / 'server.log').read_text()[-3000:]}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(180_000)
    yield page
    context.close()


def settle(page, timeout: float = 180) -> None:
    """Wait until the script run is over: no "Running…" status, no skeletons, for a moment in a row."""
    end, quiet = time.monotonic() + timeout, 0
    time.sleep(0.5)
    while time.monotonic() < end and quiet < 3:
        busy = (
            page.locator('[data-testid="stStatusWidget"]').count() + page.locator('[data-testid="stSkeleton"]').count()
        )
        quiet = 0 if busy else quiet + 1
        time.sleep(0.3)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
