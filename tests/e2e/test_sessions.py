"""Four people at once in a real browser: two sampling, two training. Each finishes, each sees only its own
work, and the shared cached model is bit-identical to its file afterwards."""

from __future__ import annotations

from tests.e2e.conftest import no_exception, shot
from tests.e2e.server import settle


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_role("spinbutton", name=label).first
    box.fill(value)
    box.press("Enter")
    settle(page)


def _choose(page, label: str, option: str) -> None:
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def _fingerprints(page, url: str) -> dict[str, str]:
    page.goto(url)
    settle(page)
    page.get_by_text("Models loaded in this server").click()
    rows = page.locator('[data-testid="stTable"] tbody tr')
    rows.first.wait_for()
    cells = [rows.nth(i).locator("th, td").all_inner_texts() for i in range(rows.count())]
    return {c[0].strip(): c[-1].strip() for c in cells}


def test_four_sessions_at_once_each_see_only_their_own_work(server, browser):
    from core.models.fingerprint import weights_fingerprint
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    url, _ = server
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1800}) for _ in range(4)]
    pages = [c.new_page() for c in contexts]
    for p in pages:
        p.set_default_timeout(240_000)
    samplers, toys = pages[:2], pages[2:]
    for p, seed in zip(samplers, ("3", "7"), strict=True):
        p.goto(f"{url}/samplers")
        settle(p)
        _fill(p, "Seed (image k uses seed + k)", seed)
    for p, data in zip(toys, ("Two moons", "8 Gaussians"), strict=True):
        p.goto(f"{url}/toy")
        settle(p)
        _choose(p, "Data set", data)
        _fill(p, "Training steps", "400")
    # Start all four, then wait: the server runs them side by side.
    for p in samplers:
        p.get_by_role("button", name="Generate", exact=True).click()
    for p in toys:
        p.get_by_role("button", name="Train", exact=True).click()
    for p, seed in zip(samplers, (3, 7), strict=True):
        p.get_by_text(f"seeds {seed} to {seed + 15}").wait_for()
        settle(p)
        no_exception(p)
        other = 10 - seed
        assert p.get_by_text(f"seeds {other} to").count() == 0
    for p, (mine, theirs) in zip(toys, (("Two moons", "8 Gaussians"), ("8 Gaussians", "Two moons")), strict=True):
        p.get_by_text("Sliced W₂").wait_for()
        settle(p)
        no_exception(p)
        assert p.get_by_text(f"toy-1 on {mine}: 400 steps").count() == 1  # each session counts its own runs
        assert p.get_by_text(f"on {theirs}").count() == 0
    for k, p in enumerate(pages):
        shot(p, f"session-{k}")
    name = "mnist-ddpm-linear"
    shown = _fingerprints(pages[0], url)
    fresh = load_model(load_registry().model(name), "cpu").module
    assert shown[f"{name} (cpu)"] == weights_fingerprint(fresh)  # four sessions later, still the file's weights
    for c in contexts:
        c.close()
