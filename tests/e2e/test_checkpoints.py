"""Your own checkpoints in a real browser: a run's checkpoints listed on the Training logs page, its button into
the Over training tab (run preselected, a row per step), and a typed local folder side by side with a bundled
model, a path outside the allowed roots answered with a sentence."""

from __future__ import annotations

import pytest

from core.runs.checkpoints import save_checkpoint
from core.runs.writer import RunWriter
from tests.e2e.conftest import _need_browser, no_exception, shot
from tests.e2e.server import app_server, settle


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """The app with a runs folder holding runs/demo/run: metrics, and checkpoints at steps 100 and 200 (the
    bundled DDPM's weights, written by the trainer's own checkpoint writer)."""
    _need_browser()
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    home = tmp_path_factory.mktemp("own")
    model = load_model(load_registry().model("mnist-ddpm-linear"))
    writer = RunWriter(home / "runs" / "demo" / "run", {"recipe": "demo", "kind": "pixel"})
    config = {"_class_name": "UNet2DModel", **dict(model.module.config)}
    for step in (100, 200):
        writer.log({"step": step, "loss": 100 / step})
        save_checkpoint(
            writer.checkpoint_folder(step),
            model.module,
            "diffusion_pytorch_model.safetensors",
            config,
            model.schedule,
            "epsilon",
            step=step,
            data="mnist",
        )
    (home / "outside").mkdir()
    with app_server(home) as running:
        yield (*running, home)


def test_run_checkpoints_from_the_logs_into_over_training_and_a_local_folder_side_by_side(own_server, page):
    url, _, home = own_server
    page.set_default_timeout(60_000)
    page.goto(f"{url}/training_logs")
    settle(page)
    page.get_by_text("mnist-ddpm-linear · bundled").first.wait_for()
    runs = page.get_by_role("combobox", name="Runs", exact=True)
    runs.click()
    page.keyboard.press("Backspace")  # the preselected bundled run goes; ours alone shows its checkpoints
    page.keyboard.type("demo")  # the list shows its first options only (every bundled run comes before ours)
    page.get_by_role("option", name="demo · runs folder").click()
    page.keyboard.press("Escape")
    settle(page)
    page.get_by_role("heading", name="Checkpoints").wait_for()
    page.get_by_role("button", name="Compare these checkpoints over training").click()
    settle(page)
    assert page.get_by_role("heading", name="Compare checkpoints").count() == 1
    panel = page.get_by_role("tabpanel")
    panel.get_by_text("step 200").first.wait_for()  # the run and its steps are chosen already
    panel.get_by_role("button", name="Sample", exact=True).click()
    settle(page)
    panel.get_by_text("step 100").first.wait_for()
    assert panel.locator('[data-testid="stImage"]').count() == 2  # a row per step
    no_exception(page)
    shot(page, "checkpoints_over_training")

    page.get_by_role("tab", name="Side by side").click()
    page.get_by_text("Your own: a Hub repo, local folders, a run's checkpoints").click()
    box = page.get_by_role("textbox", name="Local folders or .safetensors files, one per line")
    box.fill(f"{home}/runs/demo/run/checkpoints/step_0000200\n{home}/outside")
    box.press("Control+Enter")
    settle(page)
    page.get_by_text("reads checkpoints only from").first.wait_for()
    page.get_by_role("button", name="Sample", exact=True).first.click()
    settle(page)
    assert page.get_by_text("demo @ step 200").count() >= 1
    assert page.get_by_text("images/s").count() >= 2
    no_exception(page)
    shot(page, "checkpoints_side_by_side")
