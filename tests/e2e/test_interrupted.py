"""Stopping a job mid-way, with the page's Stop or Streamlit's own (the toolbar's, top right, which users press
as often). While a job with a page Stop runs, the toolbar's Stop presses the page's (ui/common/live.py), so either
ends the job the same way: the page is drawn again whole, with what was done and a sentence saying so, and no
earlier result lost. Also: a closed tab ends the server's work for it."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.e2e.conftest import no_exception, shot, start_toy_training
from tests.e2e.server import settle


def _toolbar_stop(page) -> None:
    """Press Streamlit's own Stop, then wait for the run it leads to."""
    page.locator('[data-testid="stStatusWidget"]').get_by_role("button", name="Stop").click()
    page.wait_for_timeout(500)
    settle(page)


def test_toolbar_stop_during_toy_training_keeps_the_model_so_far_and_draws_the_whole_page(server, page):
    url, _ = server
    start_toy_training(page, url, 20000)
    page.get_by_text("steps/s").first.wait_for()  # training is under way
    _toolbar_stop(page)
    no_exception(page)
    for section in ("1 · Data", "2 · Train", "3 · Sample", "4 · Drift field"):
        assert page.get_by_role("heading", name=section).count() == 1, section
    assert page.get_by_role("button", name="Continue training").is_enabled()
    assert page.get_by_text("(stopped before 20,000)").count() == 1  # the model so far is kept
    page.get_by_text("Sliced W₂").first.wait_for()  # and sampled once by itself
    shot(page, "toy-after-toolbar-stop")


def test_toolbar_stop_during_vae_training_keeps_the_vae_so_far(server, page):
    url, _ = server
    page.goto(f"{url}/latent")
    settle(page)
    page.get_by_text("Train one here").first.click()
    settle(page)
    page.get_by_role("button", name="Train VAE", exact=True).click()
    page.get_by_text("reconstruction").first.wait_for()
    page.wait_for_timeout(1500)
    _toolbar_stop(page)
    no_exception(page)
    for section in ("2 · What each point decodes to", "3 · Where each digit lives: kernel density estimates"):
        assert page.get_by_role("heading", name=section).count() == 1, section
    assert page.get_by_text("the VAE so far").count() == 1  # the VAE trained until the Stop is the one in use
    shot(page, "latent-after-toolbar-stop")


def test_toolbar_stop_during_sampling_shows_where_it_got_to_and_keeps_the_last_finished_run(server, page):
    url, _ = server
    page.goto(f"{url}/samplers")
    settle(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Model calls (NFE)").wait_for()  # a finished run at the defaults
    steps = page.get_by_role("spinbutton", name="Steps").first
    steps.fill("200")
    steps.press("Enter")
    settle(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text(re.compile(r"^Step \d+ of 200")).first.wait_for()
    _toolbar_stop(page)
    no_exception(page)
    done = int(re.search(r"step (\d+)", page.get_by_text("Stopped at step").text_content()).group(1))
    assert 1 <= done < 200
    assert page.get_by_text("Model calls (NFE)").count() == 1  # the earlier finished run is still there
    assert page.get_by_text("From earlier settings").count() == 1  # and says it is not the current settings'
    shot(page, "samplers-after-toolbar-stop")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_closing_the_tab_ends_the_servers_work_for_it(server, browser):
    """A long sampling run stops within about a second of its tab closing (it went on for minutes before)."""
    url, process = server
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.goto(f"{url}/compare_checkpoints")
    settle(page)
    box = page.get_by_role("spinbutton", name="Steps", exact=True)
    box.fill("300")  # well inside the job-time budget even on a busy machine (600 was refused there once)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Sample", exact=True).click()  # 2 models x 16 images x 300 steps
    page.get_by_text(re.compile(r": \d+%$")).first.wait_for()  # the progress bar: the run is under way
    context.close()  # the tab goes away mid-run
    time.sleep(2.0)
    before = _cpu_seconds(process.pid)
    time.sleep(3.0)
    assert _cpu_seconds(process.pid) - before < 0.6  # the server is idle again, not sampling for nobody


def test_the_in_page_stop_during_the_sampler_measure_keeps_the_samplers_measured(server, page):
    """The Ground truth page's Stop (in the accuracy tab, which runs in the page's own run, not a fragment) ends
    the Measure between samplers; the rows done stay on the page with a sentence."""
    url, _ = server
    page.goto(f"{url}/ground_truth")
    settle(page)
    points = page.get_by_role("spinbutton", name="Start points")
    points.fill("5000")
    points.press("Enter")
    settle(page)
    page.get_by_role("button", name="Measure", exact=True).click()
    page.get_by_text(re.compile(r"^[1-9]\d? of \d+ samplers")).first.wait_for()  # one sampler or more done
    page.get_by_role("tabpanel").get_by_role("button", name="Stop", exact=True).click()  # the tab's, not the toolbar's
    settle(page)
    no_exception(page)
    warning = page.get_by_text(re.compile(r"Stopped after \d+ of \d+ samplers"))
    warning.wait_for()
    done = int(re.search(r"after (\d+)", warning.text_content()).group(1))
    assert 1 <= done < 11
    assert page.get_by_text("start points, measured in").count() == 1  # the chart and tables of the rows done


def test_the_in_page_stop_during_the_latent_model_training_keeps_the_model_so_far(server, page):
    """The latent model trains in the page's own run, not inside the diffusion section's fragment, whose clicks
    wait for it to finish: there its Stop did nothing until the training was over."""
    url, _ = server
    page.goto(f"{url}/latent")
    settle(page)
    page.get_by_text("Train one here").last.click()
    settle(page)
    page.get_by_role("button", name="Train latent model", exact=True).click()
    page.get_by_text("steps/s").first.wait_for()
    page.locator('[data-testid="stMain"]').get_by_role("button", name="Stop", exact=True).last.click()
    settle(page)
    no_exception(page)
    page.get_by_text("this is the model so far").wait_for()
    assert page.get_by_role("button", name="Generate", exact=True).count() == 1  # and it samples


def test_toolbar_stop_during_the_inversion_measure_keeps_the_round_trips_done(server, page):
    """The digits' error measurement runs in the page's own run (not a fragment), so its Stop ends it between
    round trips, and the ones done stay on the page with a sentence."""
    url, _ = server
    page.goto(f"{url}/inversion")
    settle(page)
    page.locator("[data-testid=stButtonGroup]").get_by_text("MNIST digits", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Measure", exact=True).click()
    page.get_by_text(re.compile(r"^[1-9]\d? of \d+ round trips")).first.wait_for()  # one round trip or more done
    _toolbar_stop(page)
    no_exception(page)
    warning = page.get_by_text(re.compile(r"Stopped after \d+ of \d+ round trips"))
    warning.wait_for()
    done, planned = (int(v) for v in re.findall(r"\d+", warning.text_content())[:2])
    assert 1 <= done < planned
    assert page.get_by_text("RMS error, ODE").count()  # the table of the round trips done


def test_toolbar_stop_during_the_guidance_sweep_keeps_the_scales_done(server, page):
    url, _ = server
    page.goto(f"{url}/guidance")
    settle(page)
    page.get_by_role("button", name="Sweep", exact=True).click()
    page.get_by_text(re.compile(r"^[1-9]\d? of 14 scales")).first.wait_for()
    assert page.get_by_text("press Sweep").count() == 0  # the scale done is drawn where the results stand
    _toolbar_stop(page)
    no_exception(page)
    warning = page.get_by_text(re.compile(r"Stopped after \d+ of 14 scales"))
    warning.wait_for()
    first = warning.text_content()
    assert page.get_by_text("Download the table (CSV)").count() == 1
    page.get_by_role("tab", name="Fields in the latent plane").click()  # a click elsewhere: the count stays
    settle(page)
    page.get_by_role("tab", name="Scale sweep").click()
    settle(page)
    assert page.get_by_text(re.compile(r"Stopped after \d+ of 14 scales")).text_content() == first


def test_toolbar_stop_during_the_checkpoint_measure_says_how_far_it_got(server, page):
    url, _ = server
    page.goto(f"{url}/compare_checkpoints")
    settle(page)
    page.get_by_role("button", name="Measure", exact=True).first.click()
    page.get_by_text(re.compile(r": \d+%")).first.wait_for()  # the first checkpoint under way
    _toolbar_stop(page)
    no_exception(page)
    page.get_by_text(
        re.compile(r"Stopped (after \d+ of \d+ checkpoints|before any checkpoint was measured)")
    ).wait_for()
    assert page.get_by_role("button", name="Measure", exact=True).count() >= 1  # and ready to measure again


def test_toolbar_stop_during_the_samplers_comparison_keeps_the_cells_done(server, page):
    url, _ = server
    page.goto(f"{url}/samplers")
    settle(page)
    page.get_by_role("tab", name="Compare").click()
    settle(page)
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text(re.compile(r"^[1-9]\d* of \d+ cells")).first.wait_for()  # a cell or more done
    _toolbar_stop(page)
    no_exception(page)
    page.get_by_text(re.compile(r"Stopped after \d+ of \d+ cells")).wait_for()
