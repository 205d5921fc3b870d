"""The bundled few-step model in a real browser: picked on the Samplers page it starts at its own sampler and step
count, and Generate keeps them (a widget the page only cleared would come back from the browser with the previous
model's value); picking its teacher again gives the page's defaults back."""

from __future__ import annotations

from tests.e2e.conftest import no_exception, shot
from tests.e2e.server import settle


def _pick(page, text: str) -> None:
    box = page.locator(".st-key-smp-model input")
    box.click()
    box.fill(text)
    page.keyboard.press("Enter")
    settle(page)


def test_the_student_keeps_its_own_sampler_and_step_through_generate(server, page):
    url, _ = server
    page.set_default_timeout(60_000)
    page.goto(f"{url}/samplers")
    settle(page)
    _pick(page, "MNIST flow, progressively")
    page.locator(".st-key-smp-go button").click()
    settle(page, timeout=300)
    no_exception(page)
    assert page.locator(".st-key-smp-sampler input").input_value() == "Euler"
    assert page.locator(".st-key-smp-steps input").input_value() == "1"
    page.get_by_role("heading", name="Euler, 1 step").wait_for()
    shot(page, "samplers-few-step")
    _pick(page, "MNIST flow matching")
    assert page.locator(".st-key-smp-sampler input").input_value() == "DPM-Solver++(2M)"
    assert page.locator(".st-key-smp-steps input").input_value() == "20"
