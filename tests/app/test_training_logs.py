"""The Training logs page with runs trained in this session: it opens on the newest of them with its checkpoints
and their way into Compare checkpoints, lists the checkpoints of every selected run, and says in a sentence what
it cannot do (grids of several runs, checkpoints the Over training tab does not take)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data.toy import TOY_SETS
from core.labs.toy import ToyRun, ToySettings
from core.runs.record import Run
from tests.conftest import ROOT
from ui.common.tables import ABSENT

LOGS = str(ROOT / "app_pages" / "training_logs.py")


@pytest.fixture(scope="module")
def toy_runs() -> tuple[ToyRun, ToyRun]:
    """Two small toy models with checkpoints kept in memory (steps 250 and 300)."""
    runs = []
    for k in (1, 2):
        run = ToyRun(TOY_SETS["moons"].cloud(500, seed=k), ToySettings(width=16, depth=1), name=f"toy-{k}")
        run.train(300)
        runs.append(run)
    return runs[0], runs[1]


def _open(session_runs: list[Run], toy: ToyRun | None = None) -> AppTest:
    at = AppTest.from_file(LOGS, default_timeout=120)
    at.session_state["session_runs"] = session_runs
    if toy is not None:
        at.session_state["toy_run"] = toy  # the Toy lab's current model: the one Over training takes
    at.run()
    assert not at.exception and not at.error
    return at


def test_the_page_opens_on_the_newest_session_run_with_its_checkpoints_and_their_comparison(app_env, toy_runs):
    older, newer = toy_runs
    at = _open([older.log, newer.log], newer)
    assert at.multiselect(key="logs-runs").value == ["toy-2 · this session"]  # no bundled run to take away first
    assert [h.value for h in at.subheader].count("Checkpoints") == 1
    frame = at.dataframe[0]
    assert list(frame.value["step"]) == [250, 300]
    shown = frame.value.astype(object).where(frame.value.notna(), frame.proto.placeholder).astype(str)
    assert list(shown["MB"]) == [ABSENT, ABSENT] and list(shown["sample grid"]) == ["no", "no"]  # never "None"
    assert at.button(key="logs-compare-toy-2").label == "Compare these checkpoints over training"
    at.button(key="logs-compare-toy-2").click().run()
    assert at.session_state["ot-run"] == "toy-2 · this session"  # preselected on the Over training tab


def test_without_session_runs_it_opens_on_the_first_listed_run(app_env):
    at = _open([])
    runs = at.multiselect(key="logs-runs")
    assert runs.value == runs.options[:1] and runs.value[0].endswith("· bundled")


def test_every_selected_run_lists_its_checkpoints_and_the_page_says_what_it_cannot_do(app_env, toy_runs, tmp_path):
    older, newer = toy_runs
    grid = tmp_path / "step_0000300.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(grid)
    copy = replace(older.log, source="another session", samples=[(300, grid)])  # the same name from elsewhere
    at = _open([older.log, newer.log, copy], newer)
    labels = ["toy-1 · this session", "toy-2 · this session", "toy-1 · another session"]
    at.multiselect(key="logs-runs").set_value(labels).run()
    assert not at.exception and not at.error  # two runs called toy-1: their widgets are kept apart
    assert [h.value for h in at.subheader].count("Checkpoints") == 1
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert headings == ["**toy-1** · this session", "**toy-2** · this session", "**toy-1** · another session"]
    zips = [b.proto.label for b in at.get("download_button")]
    assert zips.count("Download the run with its checkpoints (zip)") == 3
    assert [b.key for b in at.button if b.key.startswith("logs-compare")] == ["logs-compare-toy-2"]
    kept_here = [c.value for c in at.caption if "are listed here only" in c.value]
    assert len(kept_here) == 2  # toy-1 (not the Toy lab's model now) and its copy
    assert any("Sample grids show for one run at a time" in c.value for c in at.caption)
    assert not any(h.value == "Samples during training" for h in at.subheader)
    at.multiselect(key="logs-runs").set_value(["toy-1 · another session"]).run()
    assert any(h.value == "Samples during training" for h in at.subheader)  # alone, its grid shows
    assert not any("Sample grids show for one run at a time" in c.value for c in at.caption)
