"""What a user waits for, in a real browser on this machine: page renders and the main buttons' work.

    python -m bench.browser [--skip-long]

Starts the app offline (`streamlit run`, bundled models) and drives Debian's chromium with Playwright, the
browser on the same machine as the server, as a user on a laptop has it. Each row is the time from the
action (navigation or click) to the moment the page stops running and shows the result. A cold render is
a page's first visit on a fresh server; a warm one is coming back to it through the sidebar in the same
session. --skip-long leaves out the in-app trainings and the quality measure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.common import print_table
from tests.e2e.server import BROWSER_ARGS, CHROMIUM, app_server, settle

PAGES = {  # URL path -> the sidebar link's text
    "": "Home",
    "forward": "Forward process",
    "samplers": "Samplers",
    "ground_truth": "Ground truth",
    "inversion": "Inversion",
    "guidance": "Guidance",
    "toy": "Toy 2-D/3-D lab",
    "latent": "Latent MNIST",
    "training_logs": "Training logs",
    "compare_checkpoints": "Compare checkpoints",
}
TARGET_WARM_S = 2.0
WARM_REPEATS = 3  # warm renders per page; the table gives their median


def _click(page, name: str) -> float:
    page.get_by_role("button", name=name, exact=True).first.click()
    return settle(page, timeout=900)


def _view(page, name: str) -> float:
    """Choose a view in a page's segmented control."""
    page.locator("[data-testid=stButtonGroup]").get_by_text(name, exact=True).click()
    return settle(page, timeout=900)


def _sidebar(page, title: str) -> float:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    return settle(page, timeout=900)


def page_renders(page, url: str, paths: list[str]) -> list[list[object]]:
    rows = []
    for path in paths:
        title = PAGES[path]
        page.goto(f"{url}/{path}")
        cold = settle(page, timeout=900)
        warm = []
        for _ in range(WARM_REPEATS):
            _sidebar(page, "Home" if path else "Forward process")
            warm.append(_sidebar(page, title))
        rows.append([title, cold, statistics.median(warm), "yes" if statistics.median(warm) <= TARGET_WARM_S else "no"])
    return rows


def actions(page, url: str, long: bool) -> list[list[object]]:
    rows = []

    def timed(what: str, seconds: float, target: str = "") -> None:
        rows.append([what, seconds, target])
        print(f"{what}: {seconds:.1f} s", flush=True)

    page.goto(f"{url}/toy")
    settle(page)
    timed("Toy lab: Train at the defaults (1,000 steps), then its automatic sample", _click(page, "Train"))
    timed("Toy lab: Sample (Euler, 50 steps, 10,000 points)", _click(page, "Sample"))
    page.goto(f"{url}/samplers")
    settle(page)
    timed("Samplers: Generate (dpmpp_2m, 20 steps, 16 images)", _click(page, "Generate"))
    page.get_by_role("tab", name="Compare").click()
    timed("Samplers: Compare at the defaults (4 samplers x 2 step counts)", _click(page, "Compare"))
    page.goto(f"{url}/ground_truth")
    settle(page)
    timed("Ground truth: Measure every sampler x 9 NFE budgets, 2,000 points", _click(page, "Measure"), "<= 5 s")
    page.get_by_role("tab", name="Likelihood and memorisation").click()
    settle(page)
    timed("Ground truth: Train a model of the mixture at the defaults", _click(page, "Train"))
    timed("Ground truth: Compute log densities (3,600 points, exact and model)", _click(page, "Compute log densities"))
    timed("Ground truth: Sample and measure memorisation", _click(page, "Sample and measure"))
    page.get_by_role("tab", name="Latent MNIST likelihood").click()
    settle(page)
    timed("Ground truth: latent model log density (976 latents)", _click(page, "Compute"))
    page.goto(f"{url}/inversion")
    settle(page)
    timed("Inversion: the latent plane's view (round trip, steps and scale curves)", _view(page, "Latent MNIST plane"))
    timed("Inversion: the digits' view (round trip, interpolation, class swap)", _view(page, "MNIST digits"))
    if long:
        timed(
            "Inversion: Measure at the defaults (2 digits, 3 samplers x 4 step counts, 7 scales)",
            _click(page, "Measure"),
        )
    page.goto(f"{url}/guidance")
    settle(page)
    if long:
        timed(
            "Guidance: Sweep the pixel model (50 per scale, 7 scales, with and without the interval)",
            _click(page, "Sweep"),
        )
    page.get_by_text("Latent model (", exact=False).click()
    settle(page)
    timed("Guidance: Sweep the latent model (200 per scale, 7 scales, both series)", _click(page, "Sweep"))
    page.goto(f"{url}/latent")
    settle(page)
    timed("Latent MNIST: Generate (bundled models)", _click(page, "Generate"))
    if long:
        page.get_by_text("Train one here").first.click()
        settle(page)
        timed("Latent MNIST: Train VAE at the defaults", _click(page, "Train VAE"), "<= 20 s")
        timed("Latent MNIST: Train latent model at the defaults", _click(page, "Train latent model"), "<= 10 s")
    page.goto(f"{url}/compare_checkpoints")
    settle(page)
    timed("Compare checkpoints: Sample (2 models, 16 images)", _click(page, "Sample"))
    if long:
        timed("Compare checkpoints: Measure (2 x 300 samples)", _click(page, "Measure"))
    return rows


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-long", action="store_true", help="leave out the trainings and the quality measure")
    parser.add_argument("--renders-only", action="store_true", help="only the page renders")
    parser.add_argument("--pages", nargs="*", default=list(PAGES), help="URL paths of the pages to render ('' = home)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, app_server(Path(home)) as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(900_000)
        renders = page_renders(page, url, args.pages)
        done = [] if args.renders_only else actions(page, url, not args.skip_long)
        browser.close()
    print_table(
        "Page renders in chromium (server and browser on this machine)",
        ["page", "cold s", f"warm s (median of {WARM_REPEATS})", f"warm <= {TARGET_WARM_S:g} s"],
        renders,
    )
    if done:
        print_table("Main buttons, click to result", ["action", "s", "target"], done)


if __name__ == "__main__":
    main()
