"""Reading real-world run logs: long, truncated, odd, or not runs at all."""

from __future__ import annotations

import numpy as np
import pytest

from core.runs.folders import discover_runs
from core.runs.ours import read_run
from core.runs.record import Run
from tests.helpers import write_long_log
from ui.common.charts import downsample, ema
from ui.common.tables import ABSENT
from ui.training_logs.figures import config_table, curves_figure, metrics_csv


def test_a_100k_line_log_with_a_truncated_last_line(tmp_path):
    write_long_log(tmp_path / "run")
    run = read_run(tmp_path / "run")
    assert len(run.metrics) == 100_000 and run.name == "long"
    assert any("line 100001" in n for n in run.notes) and "no samples folder" in run.notes
    x, y = run.series("loss")
    dx, dy = downsample(x, y, 2000)
    assert len(dx) <= 2002 and dx[0] == 1 and dx[-1] == 100_000
    assert dy.max() == 25.0 and dy.min() == y.min()  # extremes survive
    assert np.all(np.diff(dx) > 0)
    fig = curves_figure([run], "loss", smoothing=0.9)
    assert sum(len(t.x) for t in fig.data) <= 2 * 2002


def test_unknown_keys_and_non_numeric_values_are_tolerated(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 1.0, "fancy": "text", "nested": {"a": 1}}\n'
        '[1, 2]\n\n{"step": 2, "loss": 0.5, "acc": 0.9}\n'
    )
    run = read_run(folder)
    assert run.keys == ["loss", "acc"]
    assert run.series("acc")[1].tolist() == [0.9]
    assert "no config.json" in run.notes and any("not a JSON object" in n for n in run.notes)


def test_discovery_finds_runs_and_notes_what_is_not(tmp_path):
    write_long_log(tmp_path / "a" / "run", n=10)  # python -m zoo train --out layout
    write_long_log(tmp_path / "b", n=10)  # a bare run folder
    (tmp_path / "holiday-photos").mkdir()
    found, notes = discover_runs(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/run", "b"]
    assert notes == ["holiday-photos is not a run (no config.json or metrics.jsonl)"]
    assert discover_runs(tmp_path / "nope")[1] == ["nope is not a folder"]  # never the server's path


def test_ema_matches_its_definition_and_is_unbiased():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    s = 0.5
    acc, expected = 0.0, []
    for i, v in enumerate(y, 1):
        acc = s * acc + (1 - s) * v
        expected.append(acc / (1 - s**i))
    assert ema(y, s).tolist() == pytest.approx(expected)
    assert ema(np.full(50, 3.0), 0.99) == pytest.approx(np.full(50, 3.0))
    assert ema(y, 0.0).tolist() == y.tolist()


def test_config_table_marks_differences_and_csv_merges_runs():
    a = Run(
        name="a",
        source="bundled",
        config={"train": {"lr": 0.1, "seed": 1}, "kind": "pixel"},
        metrics=[{"step": 1, "loss": 2.0}],
    )
    b = Run(
        name="b",
        source="runs folder",
        config={"train": {"lr": 0.2, "seed": 1}},
        metrics=[{"step": 1, "loss": 3.0, "acc": 0.5}],
    )
    table = config_table([a, b])
    assert table.loc["train.lr", "differs"] and not table.loc["train.seed", "differs"]
    assert table.loc["kind", "b (runs folder)"] == ABSENT  # the one dash tables show for a missing value
    csv = metrics_csv([a, b]).decode().splitlines()
    assert csv[0] == "run,source,step,loss,acc" and csv[2].startswith("b,runs folder,1,3.0,0.5")


def test_a_hostile_run_folder_reads_as_notes_not_a_recursion_error(tmp_path):
    """A config.json or a metrics line nested 200,000 deep (the hostile hunt's) in a runs folder: the run is read
    with a note for each, so the pages that list the runs folder open all the same."""
    from core.runs.ours import read_run

    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n' + "[" * 200_000 + "]" * 200_000 + "\n")
    run = read_run(folder)
    assert "config.json nests deeper than 32 levels and was not read" in run.notes
    assert "line 2 nests deeper than 32 levels and was skipped" in run.notes
    assert run.metrics == [{"step": 1, "loss": 0.5}]  # the good line is kept
