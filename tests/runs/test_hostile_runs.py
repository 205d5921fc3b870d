"""Run folders built or changed to get around the allowed roots (core/paths.open_inside, as core/runs reads them):
a config.json, metrics.jsonl, sample grid or event file that is a link out of the roots, a FIFO, and a thread
that swaps such a link in and out while the readers read again and again. Real files and links throughout."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from torch.utils.tensorboard import SummaryWriter

from core.paths import allowed_roots
from core.runs.folders import RunReader, discover_runs
from core.runs.ours import read_run
from core.runs.record import Run
from core.runs.tensorboard import TensorBoardReader, read_tensorboard_run
from tests.conftest import ROOT

SECRET = 271828  # in every file outside the roots: it must never reach a Run
INSIDE_CONFIG = {"recipe": "mine", "train": {"lr": 0.001}}
INSIDE_METRICS = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]
OUT = "leads outside the folders this app reads, so it was not read"


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """The runs folder (the one allowed root) and a folder outside it holding files that must stay unread."""
    runs, outside = tmp_path / "runs", tmp_path / "private"
    runs.mkdir()
    outside.mkdir()
    monkeypatch.setenv("ATLAS_RUNS", str(runs))
    monkeypatch.delenv("ATLAS_ALLOWED_ROOTS", raising=False)
    (outside / "config.json").write_text(json.dumps({"recipe": "stolen", "secret": SECRET}))
    (outside / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 9.0, "secret": SECRET}) + "\n")
    (outside / "step_0000001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + str(SECRET).encode())
    _events(outside / "tb", "secret", float(SECRET))
    return runs.resolve(), outside.resolve()


def _events(folder: Path, tag: str, value: float) -> Path:
    """An event file written by torch's SummaryWriter: `tag` at steps 1-3."""
    writer = SummaryWriter(str(folder))
    for step in (1, 2, 3):
        writer.add_scalar(tag, value / step, step)
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def _our_run(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(INSIDE_CONFIG))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in INSIDE_METRICS))


def _leaks(run) -> bool:
    """Whether anything read from outside the roots is in the run (its config, metrics, samples or tags)."""
    return str(SECRET) in repr((run.config, run.metrics, run.samples)) or any("secret" in k for k in run.keys)


def _tags(run) -> list[str]:
    """The metrics an event folder's run logged (not the reader's own "seconds")."""
    return [k for k in run.keys if k != "seconds"]


def test_a_run_whose_files_lead_outside_the_roots_is_read_without_them_and_says_so(roots, tmp_path):
    runs, outside = roots
    evil = runs / "evil"
    (evil / "samples").mkdir(parents=True)
    (evil / "config.json").symlink_to(outside / "config.json")
    (evil / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    (evil / "samples" / "step_0000001.png").symlink_to(outside / "step_0000001.png")
    _our_run(runs / "mine")
    twin = runs / "twin"  # links to another run inside the roots: followed
    twin.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        (twin / name).symlink_to(runs / "mine" / name)

    (runs / "door").mkdir()  # a run/ or logs/ that leads outside: skipped, unread
    (runs / "door" / "run").symlink_to(outside, target_is_directory=True)
    (runs / "hatch").mkdir()
    (runs / "hatch" / "logs").symlink_to(outside / "tb", target_is_directory=True)

    found, notes = discover_runs(runs)
    assert [f.name for f in found] == ["evil", "mine", "twin"]
    assert notes == [
        "door/run leads outside the runs folder and was skipped",
        "hatch/logs leads outside the runs folder and was skipped",
    ]
    read = {f.name: RunReader(f, roots=allowed_roots()).read() for f in found}
    run = read["evil"]
    assert run.config == {} and run.metrics == [] and run.samples == [] and not _leaks(run)
    assert f"runs/evil/config.json {OUT}" in run.notes
    assert f"runs/evil/metrics.jsonl {OUT}" in run.notes
    assert (
        "1 sample grids lead outside the folders this app reads or are not regular files, so they are not shown "
        "(e.g. runs/evil/samples/step_0000001.png)" in run.notes
    )
    assert all(str(tmp_path) not in n for n in run.notes)  # named relative to the root, never the server's path
    assert read["mine"].config == read["twin"].config == INSIDE_CONFIG
    assert read["mine"].metrics == read["twin"].metrics == INSIDE_METRICS
    assert read["mine"].notes == read["twin"].notes == ["no samples folder"]


def test_a_fifo_named_metrics_jsonl_is_a_note_not_a_page_that_waits_forever(roots):
    runs, _ = roots
    _our_run(runs / "pipe")
    (runs / "pipe" / "metrics.jsonl").unlink()
    os.mkfifo(runs / "pipe" / "metrics.jsonl")  # opened for reading, it would wait for a writer forever
    result: list = []
    reader = threading.Thread(target=lambda: result.append(read_run(runs / "pipe", roots=allowed_roots())))
    reader.start()
    reader.join(60)  # a guard against a hang, not a timing: the note comes at once
    assert not reader.is_alive()
    (run,) = result
    assert run.config == INSIDE_CONFIG and run.metrics == []
    assert "runs/pipe/metrics.jsonl is not a regular file, so it was not read" in run.notes


def test_an_event_file_that_leads_outside_the_roots_is_a_note_never_read(roots, tmp_path):
    runs, outside = roots
    tb = runs / "tb"
    real = _events(tb, "loss", 1.0)
    (tb / "events.out.tfevents.9.evil").symlink_to(next((outside / "tb").iterdir()))
    (runs / "only-link").mkdir()
    (runs / "only-link" / "events.out.tfevents.1.host").symlink_to(next((outside / "tb").iterdir()))
    (runs / "near").mkdir()  # a link to an event file inside the roots: followed
    (runs / "near" / "events.out.tfevents.1.host").symlink_to(real)

    found, notes = discover_runs(runs)
    assert [f.name for f in found] == ["near", "only-link", "tb"] and notes == []
    read = {f.name: RunReader(f, roots=allowed_roots()).read() for f in found}
    assert read["tb"].series("loss")[1].tolist() == [1.0, 0.5, float(np.float32(1 / 3))]
    assert _tags(read["tb"]) == ["loss"] and not _leaks(read["tb"])
    assert f"runs/tb/events.out.tfevents.9.evil {OUT}" in read["tb"].notes
    only = read["only-link"]
    assert only.metrics == [] and not _leaks(only)
    assert only.notes == [f"runs/only-link/events.out.tfevents.1.host {OUT}", "no scalars were logged"]
    assert _tags(read["near"]) == ["loss"] and read["near"].notes == []
    assert all(str(tmp_path) not in n for run in read.values() for n in run.notes)


def test_the_training_logs_page_says_which_file_of_a_run_it_did_not_read(app_env, roots):
    runs, outside = roots
    _our_run(runs / "evil")
    (runs / "evil" / "metrics.jsonl").unlink()
    (runs / "evil" / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    at = AppTest.from_file(str(ROOT / "app_pages" / "training_logs.py"), default_timeout=120).run()
    at.multiselect(key="logs-runs").set_value(["evil · runs folder"]).run()
    assert not at.exception and not at.error
    assert f"Note: runs/evil/metrics.jsonl {OUT}." in [i.value for i in at.info]
    assert [w.value for w in at.warning] == ["The chosen runs logged no numeric metrics."]  # none of the outside's


class Swapper:
    """A thread that keeps replacing `target` by the next of `states` (each a function making a fresh entry at
    the spare path): mostly by an atomic rename over it, every 16th time by unlink and remake (so the name is
    also missing at times). Hands the GIL over often, so the swaps land inside the reads."""

    def __init__(self, targets: list[Path], states: list[Callable[[Path, Path], None]]) -> None:
        self.targets, self.states = targets, states
        self.stop, self.swaps = threading.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.swaps += 1
            make = self.states[self.swaps % len(self.states)]
            for target in self.targets:
                spare = target.with_name(".spare-" + target.name)
                if self.swaps % 16:
                    make(target, spare)
                    os.replace(spare, target)
                else:
                    target.unlink(missing_ok=True)
                    make(target, target)

    def __enter__(self) -> Swapper:
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        sys.setswitchinterval(self.interval)


def _race(read: Callable[[], Run], judge: Callable[[Run], str], least: int = 1000, most: int = 5000) -> dict:
    """Read again and again, at least `least` times, then until a whole read, a refusal and a refusal of a link
    swapped in while the file was opened ("caught mid-open") were each seen, at most `most` times; each result
    judged "leak", "whole" or "refused"; exceptions counted by type."""
    counts = {"leak": 0, "whole": 0, "refused": 0, "caught mid-open": 0, "reads": 0}
    errors: dict[str, int] = {}
    seen = ("whole", "refused", "caught mid-open")
    while counts["reads"] < most and (counts["reads"] < least or not all(counts[k] for k in seen)):
        counts["reads"] += 1
        try:
            result = read()
        except Exception as e:  # read() never raises: any exception here is a failure
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            continue
        counts[judge(result)] += 1
        counts["caught mid-open"] += any("changed while it was being read" in n for n in result.notes)
    return counts | {"errors": errors}


def test_config_and_metrics_swapped_for_links_out_while_read_are_never_read(roots):
    """config.json and metrics.jsonl flip between a regular file inside (a hard link), a link inside, a link
    outside and nothing, while a run is read again and again: no read returns what is outside, none raises, and
    a read without a file says why in a note."""
    runs, outside = roots
    _our_run(runs / "store")
    run = runs / "r"
    run.mkdir()
    names = ("config.json", "metrics.jsonl")
    for name in names:
        os.link(runs / "store" / name, run / name)
    states = [
        lambda target, at: os.link(runs / "store" / target.name, at),
        lambda target, at: at.symlink_to(runs / "store" / target.name),
        lambda target, at: at.symlink_to(outside / target.name),
    ]
    why = (OUT, "changed while it was being read", "is not there", "no config.json", "no metrics.jsonl")

    def judge(got) -> str:
        if _leaks(got):
            return "leak"
        said = any(w in n for n in got.notes for w in why)
        config_ok = got.config == INSIDE_CONFIG or (got.config == {} and said)
        metrics_ok = got.metrics == INSIDE_METRICS or (got.metrics == [] and said)
        assert config_ok and metrics_ok, got.notes  # each file is read whole, or its note says why not
        return "whole" if got.config == INSIDE_CONFIG and got.metrics == INSIDE_METRICS else "refused"

    with Swapper([run / n for n in names], states) as swapper:
        counts = _race(lambda: read_run(run, roots=allowed_roots()), judge)
    print(f"ours: {counts}, {swapper.swaps} swaps")
    assert counts["leak"] == 0 and counts["errors"] == {}
    assert counts["whole"] and counts["refused"] and counts["caught mid-open"]  # the swaps landed inside the reads


def test_an_event_file_swapped_for_a_link_out_while_read_is_never_read(roots):
    """An event file flips between a regular file inside (a hard link), a link inside, a link to an event file
    outside and nothing, while a fresh reader and a long-lived one (the pages' cache) read the folder again and
    again: no read takes a point of the outside file, none raises, and a read without the file says why."""
    runs, outside = roots
    store = _events(runs / "store", "loss", 1.0)
    (secret,) = (outside / "tb").iterdir()
    run = runs / "tb"
    run.mkdir()
    target = run / "events.out.tfevents.1.host"
    os.link(store, target)
    states = [
        lambda target, at: os.link(store, at),
        lambda target, at: at.symlink_to(store),
        lambda target, at: at.symlink_to(secret),
    ]
    kept = TensorBoardReader(run, roots=allowed_roots())
    why = (OUT, "changed while it was being read", "is not there", "no TensorBoard event files")

    def judge(got) -> str:
        if _leaks(got) or _leaks(kept.read()):
            return "leak"
        if _tags(got) == ["loss"]:
            assert got.series("loss")[0].tolist() == [1, 2, 3]
            return "whole"
        assert got.metrics == [] and any(w in n for n in got.notes for w in why), got.notes
        return "refused"

    with Swapper([target], states) as swapper:
        counts = _race(lambda: read_tensorboard_run(run, roots=allowed_roots()), judge)
    print(f"tensorboard: {counts}, {swapper.swaps} swaps")
    assert counts["leak"] == 0 and counts["errors"] == {}
    assert counts["whole"] and counts["refused"] and counts["caught mid-open"]
    assert not any("an error reading it" in n for n in kept.read().notes)


def test_a_sample_grid_swapped_for_a_link_out_after_listing_is_refused_when_shown(roots):
    """The page reads a grid when it shows it: through open_inside with the run's roots, so a link swapped in
    between the listing and the read is refused with a sentence, never followed."""
    from PIL import Image

    from core.errors import AtlasError
    from ui.training_logs.figures import read_grid

    runs, outside = roots
    _our_run(runs / "mine")
    grid = runs / "mine" / "samples" / "step_0000001.png"
    grid.parent.mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(grid)
    run = read_run(runs / "mine", roots=allowed_roots())
    assert [p for _, p in run.samples] == [grid] and run.roots == tuple(allowed_roots())
    assert read_grid(grid, run.roots).shape == (360, 360, 3)  # read and enlarged
    grid.unlink()
    grid.symlink_to(outside / "step_0000001.png")
    with pytest.raises(AtlasError, match=f"runs/mine/samples/step_0000001.png {OUT}"):
        read_grid(grid, run.roots)
