"""A new user's walk through every page in a real browser: open it, use its main control, see the result.

Runs offline (HF_HUB_OFFLINE=1) against `streamlit run`; a screenshot of each page lands in
tests/e2e/screenshots/. Adding a page to the walk is one entry in WALK.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import no_exception, shot
from tests.e2e.server import settle


def _click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).first.click()
    settle(page)


def home(page) -> None:
    assert page.get_by_role("heading", name="Diffusion Atlas").count()
    page.get_by_text("Latent MNIST").first.wait_for()  # every page is listed


def forward(page) -> None:
    page.get_by_text("x_t along the way").wait_for()
    box = page.get_by_label("Or your own t values (comma-separated)")
    box.fill("0, 100, 500, 999")
    box.press("Enter")
    settle(page)
    for t in (100, 500, 999):
        assert page.get_by_text(f"t = {t}", exact=True).count() == 1  # the row shows exactly these steps
    assert page.locator(".js-plotly-plot").count() >= 3  # histogram, schedule curves, embedding


def samplers(page) -> None:
    _click(page, "Generate")
    page.get_by_text("Model calls (NFE)").wait_for()
    assert page.get_by_text("seeds 0 to").count()
    for name, suffix in (
        ("Download the grid (PNG)", ".png"),
        ("Download the run (GIF)", ".gif"),
    ):  # one after the other
        with page.expect_download(timeout=30_000) as download:
            page.get_by_role("button", name=name).click()
        assert download.value.suggested_filename.endswith(suffix)


def ground_truth(page) -> None:
    _click(page, "Measure")
    page.get_by_text("start points, measured in").wait_for()
    assert page.get_by_text("Heun: order", exact=False).count()  # the legend gives each fitted order
    page.get_by_role("tab", name="Trajectory probe").click()
    settle(page)
    start = page.get_by_text("Start: (")
    first = start.text_content()
    plots = page.get_by_role("tabpanel").locator(".js-plotly-plot")
    assert plots.count() == 2  # the map to click, the paths
    box = plots.first.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + 0.2 * box["height"])  # a dot up and right
    settle(page)
    page.wait_for_function(f"() => !document.body.innerText.includes({first!r})")
    x, y = (float(v) for v in start.text_content().split("(")[1].split(")")[0].split(","))
    assert x > 3 and y > 3  # the paths now start where the click was


def inversion(page) -> None:
    page.get_by_text("RMS round-trip error").first.wait_for()  # a point cloud's round trip, on sight
    assert page.get_by_text("Heun (slope", exact=False).count()  # the ladder's legend gives each slope
    page.locator("[data-testid=stButtonGroup]").get_by_text("MNIST digits", exact=True).click()
    settle(page)
    page.get_by_text("Class swap").wait_for()
    assert page.get_by_text("spherical (slerp)", exact=False).count() == 1
    assert page.get_by_text("fresh N(0, I)").count()  # the noise statistics beside a fresh draw


def guidance(page) -> None:
    page.get_by_text("Latent model (", exact=False).click()
    settle(page)
    _click(page, "Sweep")
    page.get_by_text("Download the table (CSV)").wait_for()
    assert page.get_by_text("real digits").count()  # the curves carry the real digits' level
    page.get_by_role("tab", name="Fields in the latent plane").click()
    settle(page)
    assert page.get_by_text("guided: CFG w = 3").count() == 1


def toy(page) -> None:
    page.get_by_role("spinbutton", name="Training steps").fill("300")
    page.keyboard.press("Enter")
    settle(page)
    _click(page, "Train")
    page.get_by_text("Sliced W₂").wait_for()  # training samples the model once by itself
    assert page.get_by_role("button", name="Continue training").is_enabled()  # at once, not after another click


def latent(page) -> None:
    assert page.get_by_text("Latent means of 1,000 fixed digits").count()
    replay = page.locator(".js-plotly-plot").first
    shown = replay.locator(".slider-group > .slider-label")  # "step N": the frame on screen
    last = shown.text_content()
    replay.get_by_text("▶ Play").click()
    page.wait_for_timeout(600)
    assert shown.text_content() != last  # Play starts again from the first step
    _click(page, "Generate")
    page.get_by_text("Read as the requested class").wait_for()
    assert page.get_by_text("Labels and confidences from the bundled LeNet").count()


def training_logs(page) -> None:
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.get_by_text("mnist-ddpm-linear · bundled").count()


def compare_checkpoints(page) -> None:
    _click(page, "Sample")
    page.get_by_text("images/s").first.wait_for()


WALK: list[tuple[str, Callable]] = [
    ("", home),
    ("forward", forward),
    ("samplers", samplers),
    ("ground_truth", ground_truth),
    ("inversion", inversion),
    ("guidance", guidance),
    ("toy", toy),
    ("latent", latent),
    ("training_logs", training_logs),
    ("compare_checkpoints", compare_checkpoints),
]


@pytest.mark.parametrize(("path", "use"), WALK, ids=[name or "home" for name, _ in WALK])
def test_new_user_walk(server, page, path, use):
    url, _ = server
    page.goto(f"{url}/{path}")
    settle(page)
    no_exception(page)
    use(page)
    settle(page)
    no_exception(page)
    shot(page, path or "home")
