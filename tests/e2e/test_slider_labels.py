"""Animated figures in a real browser: every label of their time slider lies inside the figure (the Toy lab's
paths and drift field cut their last one at the right edge)."""

from __future__ import annotations

from tests.e2e.conftest import no_exception, shot
from tests.e2e.server import settle


def test_the_toy_labs_slider_labels_stay_inside_their_figures(server, page):
    url, _ = server
    page.goto(f"{url}/toy")
    settle(page)
    steps = page.get_by_role("spinbutton", name="Training steps")
    steps.fill("200")
    steps.press("Enter")
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
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
