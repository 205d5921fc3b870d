"""TensorBoard event folders as runs: real files written by torch's SummaryWriter (as accelerate's tracker
writes them), read back exactly, and damaged or odd ones read into notes, never exceptions."""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from torch.utils.tensorboard import SummaryWriter

from core.runs import tensorboard as tb
from core.runs.folders import discover_runs, run_format, stamp
from core.runs.tensorboard import is_tensorboard_folder, read_tensorboard_run
from tests.conftest import ROOT
from ui.training_logs.figures import read_grid

LOGS = str(ROOT / "app_pages" / "training_logs.py")
STEPS = list(range(1, 21))
IMAGE_STEPS = (5, 10, 15)


def _loss(step: int) -> float:
    return 4.0 / step + 0.125  # a float32 value read back as written


def _grid(step: int) -> np.ndarray:
    return np.random.default_rng(step).integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def write_accelerate_run(out: Path, project: str = "train_unconditional", hparams: bool = True) -> Path:
    """What diffusers' train_unconditional.py leaves with --logger tensorboard: <out>/logs/<project>/events...,
    hyper-parameters (init_trackers(config=...)) one folder below, scalars every step, a grid now and then."""
    folder = out / "logs" / project
    writer = SummaryWriter(str(folder))
    if hparams:
        writer.add_hparams({"learning_rate": 0.0001, "train_batch_size": 16, "mixed_precision": "no"}, metric_dict={})
    for step in STEPS:
        writer.add_scalar("train/loss", _loss(step), step)
        if step % 2 == 0:
            writer.add_scalar("lr", step * 0.5, step)
        if step in IMAGE_STEPS:
            writer.add_image("test_samples", _grid(step), step, dataformats="HWC")
    writer.close()
    return folder


def _only_event_file(folder: Path) -> Path:
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def test_an_accelerate_layout_is_discovered_and_read_exactly(tmp_path):
    folder = write_accelerate_run(tmp_path / "out")
    assert is_tensorboard_folder(tmp_path / "out") and run_format(tmp_path / "out") == "tensorboard"
    assert discover_runs(tmp_path / "out") == ([tmp_path / "out" / "logs"], [])  # read from logs/, hparams in reach
    assert discover_runs(tmp_path) == ([tmp_path / "out" / "logs"], [])  # a runs folder holding it

    run = read_tensorboard_run(tmp_path / "out" / "logs", "runs folder", "out")
    assert run.name == "out" and run.notes == []
    assert [r["step"] for r in run.metrics] == STEPS
    assert [r["train/loss"] for r in run.metrics] == [float(np.float32(_loss(s))) for s in STEPS]
    assert [r.get("lr") for r in run.metrics] == [s * 0.5 if s % 2 == 0 else None for s in STEPS]
    assert run.series("loss")[1].tolist() == run.series("train/loss")[1].tolist()  # the alias the page opens on
    seconds = [r["seconds"] for r in run.metrics]
    assert seconds[0] == 0 and all(b >= a for a, b in itertools.pairwise(seconds))
    assert run.config["hparams"] == {"learning_rate": 0.0001, "train_batch_size": 16, "mixed_precision": "no"}
    assert run.config["tags"] == {"scalars": ["lr", "train/loss"], "images": ["test_samples"], "loss": "train/loss"}
    files = run.config["event_files"]
    assert len(files) == 2 and sum(f.startswith(f"{folder.name}/events.out.tfevents.") for f in files) == 1

    assert [step for step, _ in run.samples] == list(IMAGE_STEPS)
    for step, data in run.samples:
        assert isinstance(data, bytes)
        with Image.open(io.BytesIO(data)) as img:
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), _grid(step))
        np.testing.assert_array_equal(read_grid(data, min_side=1), _grid(step))  # the page's reader


def test_a_truncated_file_keeps_its_good_records_and_says_so(tmp_path):
    folder = write_accelerate_run(tmp_path / "out", hparams=False)
    path = _only_event_file(folder)
    data = path.read_bytes()
    path.write_bytes(data[:-9])  # the writer killed while it wrote its last record: "lr" of step 20
    run = read_tensorboard_run(folder)
    assert len(run.notes) == 1 and "stopped at a truncated record" in run.notes[0]
    assert [r["step"] for r in run.metrics] == STEPS
    assert [r["train/loss"] for r in run.metrics] == [float(np.float32(_loss(s))) for s in STEPS]
    assert [r.get("lr") for r in run.metrics] == [s * 0.5 if s % 2 == 0 else None for s in STEPS[:-1]] + [None]
    assert len(run.samples) == 3

    middle = bytearray(data)
    middle[len(data) // 2] ^= 0xFF  # a flipped bit halfway: the reader stops at the record's checksum
    path.write_bytes(bytes(middle))
    run = read_tensorboard_run(folder)
    assert "stopped at a corrupt record" in run.notes[0] and 0 < len(run.metrics) < len(STEPS)


def test_junk_named_like_an_event_file_is_a_note(tmp_path):
    (tmp_path / "events.out.tfevents.123.host").write_bytes(os.urandom(300))
    (tmp_path / "events.out.tfevents.124.host").write_bytes(b"")
    run = read_tensorboard_run(tmp_path)
    assert run.metrics == [] and run.samples == []
    assert "no scalars were logged" in run.notes
    assert any("events.out.tfevents.123.host: reading stopped" in n for n in run.notes)


def test_empty_unrelated_deep_and_outside_folders_are_not_runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_tensorboard_folder(empty) and run_format(empty) is None
    assert discover_runs(empty) == ([], [])
    photos = tmp_path / "runs" / "holiday-photos" / "2024"
    photos.mkdir(parents=True)
    (photos / "beach.jpg").write_bytes(b"not really")
    deep = write_accelerate_run(tmp_path / "elsewhere" / "a" / "b", hparams=False)  # events 4 levels down
    assert not is_tensorboard_folder(tmp_path / "elsewhere")
    (tmp_path / "runs" / "link").symlink_to(deep.parent, target_is_directory=True)  # leads out of the runs folder
    found, notes = discover_runs(tmp_path / "runs")
    assert found == []
    assert notes == [
        "holiday-photos is not a run (no config.json or metrics.jsonl)",
        "link leads outside the runs folder and was skipped",
    ]
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "logs").symlink_to(deep, target_is_directory=True)  # symlinks inside a run are not followed either
    assert not is_tensorboard_folder(inner)


def test_a_resumed_run_drops_the_steps_it_redid_and_names_odd_tags(tmp_path):
    first = SummaryWriter(str(tmp_path))
    for step in range(10):
        first.add_scalar("loss", 1.0, step)
        first.add_scalar("step", step, step)  # diffusers' examples log the step too
    first.close()
    second = SummaryWriter(str(tmp_path))  # restarted from the checkpoint of step 6
    for step in range(6, 8):
        second.add_scalar("loss", 2.0, step)
    second.close()
    run = read_tensorboard_run(tmp_path)
    assert len(run.config["event_files"]) == 2
    assert run.series("loss")[0].tolist() == list(range(8)) and run.series("loss")[1].tolist() == [1.0] * 6 + [2.0] * 2
    assert run.series("step (logged)")[1].tolist() == list(range(6))  # the earlier file's, up to the restart


def test_caps_on_scalar_points_and_images_are_noted(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_LOG_SCALARS", "25")
    monkeypatch.setenv("ATLAS_MAX_LOG_IMAGES", "2")
    folder = write_accelerate_run(tmp_path / "out", hparams=False)  # 30 scalar points, 3 images
    run = read_tensorboard_run(folder)
    steps = [r["step"] for r in run.metrics]
    assert steps[-1] == STEPS[-1] and sum(len(r) - 2 for r in run.metrics) <= 25
    assert steps == [1, 3, 5, 7, 9, 11, 13, 15, 17, 20]
    assert any("one step in every 2 is shown" in n for n in run.notes)
    assert [s for s, _ in run.samples] == [5, 15] and any("more than 2 images" in n for n in run.notes)


def test_oversized_images_are_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "MAX_IMAGE_PIXELS", 100)
    run = read_tensorboard_run(write_accelerate_run(tmp_path / "out", hparams=False))
    assert run.samples == [] and any("3 logged images were skipped, e.g. step 5: 20x12 pixels" in n for n in run.notes)


def test_the_page_lists_a_tensorboard_run_with_its_curves_and_grids(app_env, tmp_path, monkeypatch):
    write_accelerate_run(tmp_path / "runs" / "my-ddpm")
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    assert not at.exception
    assert "my-ddpm · runs folder" in at.multiselect(key="logs-runs").options
    at.multiselect(key="logs-runs").set_value(["my-ddpm · runs folder"]).run()
    assert not at.exception and not at.info  # no notes
    assert at.multiselect(key="logs-keys").value == ["loss"]
    assert set(at.multiselect(key="logs-keys").options) == {"train/loss", "lr", "loss"}
    assert len(at.get("plotly_chart")) == 1
    slider = at.select_slider(key="logs-step-my-ddpm")
    assert slider.options == ["5", "10", "15"] and slider.value == 15
    slider.set_value(10).run()
    assert at.get("image")[0].captions == ["step 10"]
    at.toggle(key="logs-animate").set_value(True).run()
    assert not at.exception and len(at.get("image")) == 2


@pytest.mark.parametrize("layout", ["bare", "run"])
def test_our_own_format_wins_where_both_are_present(tmp_path, layout):
    folder = tmp_path / "a" / "run" if layout == "run" else tmp_path / "a"
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    write_accelerate_run(folder, hparams=False)
    assert discover_runs(tmp_path) == ([folder], [])


def test_the_search_for_event_files_is_bounded_and_noted(tmp_path, monkeypatch):
    folder = write_accelerate_run(tmp_path / "out")  # two event files: the run's and add_hparams'
    monkeypatch.setattr(tb, "MAX_EVENT_FILES", 1)
    run = read_tensorboard_run(folder)
    assert len(run.config["event_files"]) == 1 and "only 1 event files were read" in run.notes[0]
    monkeypatch.setattr(tb, "MAX_ENTRIES_SCANNED", 1)
    assert not is_tensorboard_folder(tmp_path / "out")  # out/ holds logs/ and nothing else: the budget ends first


def test_the_page_rereads_a_tensorboard_run_when_its_newest_file_grows(tmp_path):
    folder = tmp_path / "logs"
    writer = SummaryWriter(str(folder))
    writer.add_scalar("loss", 1.0, 1)
    writer.flush()
    assert run_format(folder) == "tensorboard"
    before = stamp(folder)
    writer.add_scalar("loss", 0.5, 2)
    writer.close()
    assert stamp(folder) != before
    assert len(read_tensorboard_run(folder).metrics) == 2
