"""The Toy lab in a real browser: after its own Stop, the progress line and the model's caption name the same step
(Streamlit starts the Stop's run at once, while the interrupted one trains on until its next redraw), and every
label of its animated figures' time sliders lies inside its figure (the last one was cut at the right edge)."""

from __future__ import annotations

import re

from tests.e2e.conftest import no_exception, shot, start_toy_training
from tests.e2e.server import settle


def test_the_toy_labs_slider_labels_stay_inside_their_figures(server, page):
    url, _ = server
    start_toy_training(page, url, 200)
    settle(page)
    page.get_by_text("Sliced W₂").first.wait_for()
    settle(page)
    animated = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator("g.slider-container"))
    assert animated.count() == 2  # the sampler's paths and the drift field
    for k in range(animated.count()):
        chart = animated.nth(k)
        chart.scroll_into_view_if_needed()
        figure = chart.locator("svg.main-svg").first.bounding_box()
        labels = chart.locator("g.slider-container text.slider-label")
        assert labels.count() >= 2
        for j in range(labels.count()):
            box = labels.nth(j).bounding_box()
            assert figure["x"] <= box["x"] and box["x"] + box["width"] <= figure["x"] + figure["width"] + 0.5, (
                k,
                labels.nth(j).text_content(),
            )
    no_exception(page)
    shot(page, "toy-slider-labels")


def test_after_the_pages_stop_the_progress_line_and_the_caption_name_one_step(server, page):
    url, _ = server
    start_toy_training(page, url, 20000)
    page.get_by_text("steps/s").first.wait_for()  # training is under way
    page.wait_for_timeout(2000)
    page.locator(".st-key-toy-stop button").first.click()
    settle(page)
    line = page.get_by_text(re.compile(r"^Stopped at step [\d,]+ of 20,000")).first
    line.wait_for()
    kept = re.search(r"Stopped at step ([\d,]+) of", line.text_content()).group(1)
    assert page.get_by_text(f"{kept} steps (stopped before 20,000)").count() == 1, kept
    assert page.get_by_text(f"the model keeps these {kept} steps").count() == 1
    page.get_by_text("Sliced W₂").first.wait_for()  # sampled by itself, a moment later: the same model
    table = page.get_by_test_id("stDataFrame").first
    assert table.get_by_text(re.compile(r"toy-1 @ [\d,]+ steps")).first.text_content() == f"toy-1 @ {kept} steps"
    no_exception(page)
    shot(page, "toy-after-its-stop")
