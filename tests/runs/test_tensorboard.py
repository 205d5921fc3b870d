"""TensorBoard event folders as runs: real files written by torch's SummaryWriter (as accelerate's tracker
writes them), read back exactly, and damaged or odd ones read into notes, never exceptions."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import scalar

from core.runs import tensorboard as tb
from core.runs.folders import RunReader, discover_runs, read, run_format, run_title, stamp
from core.runs.ours import read_run
from core.runs.record import run_name
from core.runs.tensorboard import TensorBoardReader, is_tensorboard_folder, read_tensorboard_run
from core.runs.writer import RunWriter
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
    assert any("events.out.tfevents.123.host: reading stopped at a corrupt record" in n for n in run.notes)


def test_a_checked_record_that_is_no_event_stops_its_file_with_a_note(tmp_path):
    with open(tmp_path / "events.out.tfevents.1.host", "wb") as f:  # framed by tensorboard's own record writer
        writer = RecordWriter(f)
        writer.write(Event(wall_time=1.0, step=1, summary=scalar("loss", 0.5)).SerializeToString())
        writer.write(b"\xff" * 20)  # a record whose checksums pass but that is no Event
        writer.write(Event(wall_time=2.0, step=2, summary=scalar("loss", 0.25)).SerializeToString())
    run = read_tensorboard_run(tmp_path)
    assert run.series("loss")[1].tolist() == [0.5]
    assert run.notes == [
        "events.out.tfevents.1.host: reading stopped at a record that is not a TensorBoard event; the records "
        "before it were kept"
    ]


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


def test_scalars_are_thinned_while_read_to_the_cap_keeping_the_ends_the_values_and_a_spike(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_LOG_SCALARS", "100")  # two tags of 150 points: a file a bit over the cap
    monkeypatch.setenv("ATLAS_MAX_LOG_IMAGES", "2")
    writer = SummaryWriter(str(tmp_path))
    for step in range(150):
        writer.add_scalar("train/loss", 100.0 if step == 77 else _loss(step + 1), step)  # a spike, thinned away
        writer.add_scalar("lr", step * 0.5, step)
        if step in (5, 10, 15):
            writer.add_image("samples", _grid(step), step, dataformats="HWC")
    writer.close()
    run = read_tensorboard_run(tmp_path)
    for tag in ("train/loss", "lr"):
        steps, values = run.series(tag)
        assert len(steps) <= 50 + 1 and steps[0] == 0 and steps[-1] == 149  # its share of the cap, and the ends
        expected = [100.0 if s == 77 else float(np.float32(_loss(s + 1))) for s in steps]
        assert values.tolist() == (expected if tag == "train/loss" else [s * 0.5 for s in steps])
        assert set(np.diff(steps[:-1]).tolist()) == {4}  # an even spread (one in every 4)
    assert 77 not in run.series("train/loss")[0] and max(run.envelopes["train/loss"][2]) == 100.0
    assert run.envelopes["loss"] == run.envelopes["train/loss"]  # the alias the page opens on
    assert run.envelopes["lr"][1][0] == 0.0 and run.envelopes["lr"][2][-1] == 149 * 0.5
    assert any("300 scalar points, more than the 100 read per run" in n for n in run.notes)
    assert [s for s, _ in run.samples] == [5, 15] and any("more than 2 images" in n for n in run.notes)


def test_only_the_first_megabytes_of_a_file_are_read_and_that_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_LOG_MB", str(4096 / 2**20))  # 4 KB of a file a bit bigger
    writer = SummaryWriter(str(tmp_path / "logs"))
    for step in range(150):
        writer.add_scalar("loss", _loss(step + 1), step)
    writer.close()
    path = _only_event_file(tmp_path / "logs")
    assert 4096 < path.stat().st_size < 2 * 4096
    run = read_tensorboard_run(tmp_path / "logs")
    size = f"{path.stat().st_size / 2**20:.2g}"  # about 0.006 MB
    assert run.notes == [
        f"{path.name}: read the first 0.0039 MB of {size} MB (ATLAS_MAX_LOG_MB, the limit per event file)"
    ]
    head = tmp_path / "head"
    head.mkdir()
    (head / path.name).write_bytes(path.read_bytes()[:4096])  # tensorboard's own reader on the first 4 KB
    accumulator = EventAccumulator(str(head))
    accumulator.Reload()
    assert run.series("loss")[0].tolist() == [e.step for e in accumulator.Scalars("loss")]


def test_large_images_are_shrunk_as_they_are_read(tmp_path):
    big = np.kron(_grid(3)[:8, :12], np.ones((90, 90, 1), dtype=np.uint8))  # 720 x 1080 blocks
    writer = SummaryWriter(str(tmp_path))
    writer.add_image("samples", big, 1, dataformats="HWC")
    writer.close()
    ((_, data),) = read_tensorboard_run(tmp_path).samples
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (tb.MAX_SAMPLE_SIDE, 240)  # the longest side at most MAX_SAMPLE_SIDE, the shape kept
        small = np.asarray(img.convert("RGB"), dtype=float)
    expected = np.asarray(Image.fromarray(big).resize((tb.MAX_SAMPLE_SIDE, 240), Image.Resampling.BOX), dtype=float)
    assert np.abs(small - expected).mean() < 2  # the same picture


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


def _same(a, b):
    assert a.metrics == b.metrics and a.samples == b.samples and a.notes == b.notes
    assert a.envelopes == b.envelopes and a.config == b.config


def test_a_growing_run_is_read_from_where_the_last_read_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_LOG_SCALARS", "30")  # thinning goes on across the reads
    starts = []
    real = tb.records
    monkeypatch.setattr(
        tb, "records", lambda path, cursor, limit: (starts.append(cursor.offset), real(path, cursor, limit))[1]
    )
    reader = TensorBoardReader(tmp_path)
    writer = SummaryWriter(str(tmp_path))
    for step in range(50):
        writer.add_scalar("loss", _loss(step + 1), step)
    writer.flush()
    first = reader.read()
    size = _only_event_file(tmp_path).stat().st_size
    assert reader.read() is first and starts == [0]  # nothing changed: nothing read
    for step in range(50, 120):
        writer.add_scalar("loss", _loss(step + 1), step)
    writer.close()
    grown = reader.read()
    assert starts == [0, size]  # only the appended bytes
    _same(grown, read_tensorboard_run(tmp_path))
    assert grown.series("loss")[0][-1] == 119 and len(grown.metrics) <= 31

    resumed = SummaryWriter(str(tmp_path))  # a second file: restarted from step 100
    for step in range(100, 110):
        resumed.add_scalar("loss", 7.0, step)
    resumed.close()
    _same(reader.read(), read_tensorboard_run(tmp_path))
    assert reader.read().series("loss")[0][-1] == 109 and reader.read().series("loss")[1][-1] == 7.0

    first_file = sorted(tmp_path.glob("events.out.tfevents.*"))[0]
    first_file.write_bytes(first_file.read_bytes()[: size // 2])  # replaced by a shorter one: read again whole
    _same(reader.read(), read_tensorboard_run(tmp_path))


def test_a_record_half_written_is_waited_for(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step in range(5):
        writer.add_scalar("loss", _loss(step + 1), step)
    writer.close()
    path = _only_event_file(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    reader = RunReader(tmp_path)
    assert "stopped at a truncated record" in reader.read().notes[0] and len(reader.read().metrics) == 4
    path.write_bytes(whole)  # the writer finished it
    run = reader.read()
    assert run.notes == [] and [r["step"] for r in run.metrics] == list(range(5))


def test_each_writer_folder_of_a_runs_folder_is_a_run_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    for name, value in (("May04_10-00-00_hostA", 1.0), ("May04_11-30-00_hostB", 2.0)):  # SummaryWriter()'s layout
        writer = SummaryWriter(str(runs / name))
        for step in range(3):
            writer.add_scalar("loss", value, step)
        writer.close()
    ours = RunWriter(runs / "my-run" / "run", {"recipe": "my-run"})
    ours.log({"step": 10, "loss": 0.5})
    (ours.checkpoint_folder(10)).mkdir(parents=True)
    found, notes = discover_runs(runs)
    assert notes == [] and found == [
        runs / "May04_10-00-00_hostA",
        runs / "May04_11-30-00_hostB",
        runs / "my-run" / "run",
    ]
    assert [run_name(f) for f in found] == ["May04_10-00-00_hostA", "May04_11-30-00_hostB", "my-run"]
    loaded = [read(f, name=run_name(f)) for f in found]
    assert [r.series("loss")[1].tolist() for r in loaded] == [[1.0] * 3, [2.0] * 3, [0.5]]
    assert [r.config.get("kind") for r in loaded] == ["tensorboard", "tensorboard", None]
    assert loaded[2].checkpoints == read_run(runs / "my-run" / "run").checkpoints != []
    assert discover_runs(runs / "May04_10-00-00_hostA") == ([runs / "May04_10-00-00_hostA"], [])  # one writer


WRITERS = (("May04_10-00-00_hostA", 1.0), ("May04_11-30-00_hostB", 2.0))  # SummaryWriter()'s runs/<date>_<host>/


def write_writer_folders(runs: Path) -> None:
    """Two SummaryWriter() folders in `runs`, each logging "loss" (its own value) at steps 0-2, the first with
    add_hparams' record one folder below its own."""
    for k, (name, value) in enumerate(WRITERS):
        writer = SummaryWriter(str(runs / name))
        if k == 0:
            writer.add_hparams({"lr": 0.001}, metric_dict={})
        for step in range(3):
            writer.add_scalar("loss", value, step)
        writer.close()


def test_each_writer_folder_of_a_runs_folder_inside_the_runs_folder_is_a_run(tmp_path):
    write_writer_folders(tmp_path / "runs" / "runs")  # a project's runs/ folder copied into the runs folder
    write_accelerate_run(tmp_path / "runs" / "out", hparams=False)
    found, notes = discover_runs(tmp_path / "runs")
    expected = [tmp_path / "runs" / "out" / "logs", *(tmp_path / "runs" / "runs" / name for name, _ in WRITERS)]
    assert notes == [] and found == expected
    assert [run_title(tmp_path / "runs", f) for f in found] == ["out", *(f"runs/{name}" for name, _ in WRITERS)]
    loaded = [read(f) for f in found[1:]]
    assert [r.series("loss")[1].tolist() for r in loaded] == [[1.0] * 3, [2.0] * 3]  # not merged
    assert loaded[0].config["hparams"] == {"lr": 0.001} and "hparams" not in loaded[1].config
    assert discover_runs(tmp_path / "runs" / "runs")[0] == found[1:]  # the same runs, from the runs/ folder itself
    assert [run_title(tmp_path / "runs" / "runs", f) for f in found[1:]] == [name for name, _ in WRITERS]


def test_the_page_overlays_the_writer_folders_of_a_runs_folder_as_runs(app_env, tmp_path, monkeypatch):
    write_writer_folders(tmp_path / "runs" / "runs")
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    assert not at.exception
    labels = [f"runs/{name} · runs folder" for name, _ in WRITERS]
    options = at.multiselect(key="logs-runs").options
    assert all(label in options for label in labels) and "runs · runs folder" not in options
    at.multiselect(key="logs-runs").set_value(labels).run()
    assert not at.exception and not at.error
    (figure,) = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    curves = {trace["name"]: trace["y"] for trace in figure["data"] if not trace["name"].endswith(" raw")}
    assert set(curves) == {f"runs/{name} (runs folder)" for name, _ in WRITERS}  # both overlaid, one chart
    for name, value in WRITERS:  # plotly's typed arrays: base64 of float64s
        y = curves[f"runs/{name} (runs folder)"]
        values = np.frombuffer(base64.b64decode(y["bdata"]), y["dtype"]) if isinstance(y, dict) else y
        assert np.allclose(values, value)  # each run's own curve (smoothed, of a constant)


def test_tensor_scalars_are_scalars_and_other_kinds_are_named(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step in range(5):
        writer.add_scalar("a", step * 0.5, step, new_style=True)  # TF2's form: a tensor, its plugin named once
    writer.add_histogram("h", np.arange(3.0), 1)
    writer.add_text("t", "hello", 1)
    writer.close()
    run = read_tensorboard_run(tmp_path)
    assert run.series("a")[1].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert run.notes == ["2 tags of other kinds (tensors, histograms, audio) were not read"]
