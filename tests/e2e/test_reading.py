"""What a reader sees fits where it is drawn, at the window size of a laptop (1280 x 900): every sampler's maths
inside its column on the Samplers page, and every class of the Latent MNIST page's class picker in sight."""

from __future__ import annotations

import pytest

from core.diffusion.samplers import SAMPLERS
from tests.e2e.conftest import no_exception, shot
from tests.e2e.server import settle

# Each typeset formula of the shown tab: how far it reaches past its column on either side, and how much of a
# display formula its box hides (KaTeX's display box clips what does not fit).
OVERFLOW = """() => {
  const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent !== null);
  return [...panel.querySelectorAll('.katex')].map(el => {
    const column = (el.closest('[data-testid="stColumn"]') || panel).getBoundingClientRect();
    const box = el.getBoundingClientRect();
    const display = el.closest('.katex-display');
    return {
      past: Math.max(box.right - column.right, column.left - box.left),
      hidden: display ? display.scrollWidth - display.clientWidth : 0,
      text: el.textContent.slice(0, 40),
    };
  });
}"""


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(180_000)
    yield page
    context.close()


def _choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.keyboard.press("ArrowDown")  # opens the list
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def test_every_samplers_maths_fits_its_column(server, laptop):
    url, _ = server
    laptop.goto(f"{url}/samplers")
    settle(laptop)
    for name, spec in SAMPLERS.items():
        _choose(laptop, "Sampler", spec.title)
        laptop.get_by_role("tab", name="Maths and code").click()
        settle(laptop)
        formulas = laptop.evaluate(OVERFLOW)
        assert formulas, name
        cut = [f for f in formulas if f["past"] > 1 or f["hidden"] > 4]  # a pixel or two of rounding
        assert not cut, (name, cut)
        if name == "dpmpp_2m_sde":
            shot(laptop, "samplers-maths-dpmpp_2m_sde")
    no_exception(laptop)


def test_the_latent_class_picker_shows_every_class(server, laptop):
    url, _ = server
    laptop.goto(f"{url}/latent")
    settle(laptop)
    picker = laptop.locator(".st-key-kde-classes")
    picker.scroll_into_view_if_needed()
    column = picker.bounding_box()
    classes = picker.get_by_role("button")
    assert classes.all_inner_texts() == [str(c) for c in range(10)]
    for k in range(10):
        box = classes.nth(k).bounding_box()
        assert classes.nth(k).is_visible() and column["x"] <= box["x"]
        assert box["x"] + box["width"] <= column["x"] + column["width"] + 1, k
    shot(laptop, "latent-class-picker")
    no_exception(laptop)
