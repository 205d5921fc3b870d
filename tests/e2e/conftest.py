"""End-to-end fixtures: the real app under `streamlit run` on 127.0.0.1, offline, and Debian's chromium.

The server and the waiting live in tests/e2e/server.py (the browser benches use them too). Locally the
browser tests skip when /usr/bin/chromium or Playwright is missing; with CI set they fail.
Screenshots go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.server import BROWSER_ARGS, CHROMIUM, app_server, settle

SHOTS = Path(__file__).parent / "screenshots"


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
    """The app on a free port, offline, with its own empty runs folder and HF cache."""
    _need_browser()
    with app_server(tmp_path_factory.mktemp("e2e")) as running:
        yield running


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


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def start_toy_training(page, url: str, steps: int) -> None:
    """Open the Toy lab with `steps` training steps and press Train (at its defaults otherwise)."""
    page.goto(f"{url}/toy")
    settle(page)
    box = page.get_by_role("spinbutton", name="Training steps")
    box.fill(str(steps))
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
