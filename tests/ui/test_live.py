"""The live-progress pieces every long job on a page uses (ui/common/live.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from ui.common import live
from ui.common.live import ProgressBar

ROOT = Path(__file__).resolve().parents[2]


class _Slot:
    def __init__(self) -> None:
        self.drawn: list[tuple[float, str]] = []

    def progress(self, share: float, text: str) -> None:
        self.drawn.append((share, text))


def test_a_progress_bar_draws_the_first_and_last_states_and_at_most_one_in_between_per_interval():
    slot = _Slot()
    bar = ProgressBar(slot, every=3600.0)  # an interval no test run reaches: only first and last get through
    for k in range(101):
        bar.show(k / 100, f"{k} of 100")
    assert slot.drawn == [(0.0, "0 of 100"), (1.0, "100 of 100")]
    eager = _Slot()
    bar = ProgressBar(eager, every=0.0)
    for k in range(5):
        bar.show(k / 4, f"{k}")
    assert [s for s, _ in eager.drawn] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_progress_bar_stays_within_zero_and_one():
    slot = _Slot()
    bar = ProgressBar(slot, every=0.0)
    bar.show(-0.2, "before")
    bar.show(1.7, "past the end")
    assert [s for s, _ in slot.drawn] == [0.0, 1.0]


def test_the_time_left_follows_the_pace_of_the_work_done_since_the_bar_first_showed(monkeypatch):
    clock = iter([100.0, 102.0, 110.0, 111.0])
    monkeypatch.setattr(live.time, "perf_counter", lambda: next(clock))
    slot = _Slot()
    bar = ProgressBar(slot, every=0.0)
    bar.show(0.2, "resumed")  # a job picked up where an earlier one stopped: the pace counts from here
    bar.show(0.21, "too soon")  # 1% in 2 s: no guess yet
    bar.show(0.6, "half")  # 0.4 of the job in 10 s: 0.4 left takes another 10 s
    bar.show(1.0, "done")
    assert [text for _, text in slot.drawn] == ["resumed", "too soon", "half · about 10 s left", "done"]


def test_the_time_left_waits_for_a_second_of_work_and_two_percent_of_the_job():
    assert live.time_left(0.0, 0.0, 0.5, 0.5) == ""  # half a second: too early to say
    assert live.time_left(0.0, 0.0, 0.01, 30.0) == ""  # 1% done: too little to go on
    assert live.time_left(0.0, 0.0, 0.25, 30.0) == " · about 1.5 min left"  # 25% in 30 s: 90 s to go
    assert live.time_left(0.5, 10.0, 0.75, 20.0) == " · about 10 s left"
    assert live.time_left(0.0, 0.0, 1.0, 20.0) == ""  # finished


def _stop_keys() -> list[tuple[str, ast.expr]]:
    """Every page Stop's key expression in ui/ and app_pages/: `….button("Stop", key=…)` and `progress_and_stop`'s."""
    found = []
    pages = [*ROOT.glob("ui/**/*.py"), *ROOT.glob("app_pages/*.py")]
    for path in [p for p in pages if p.name != "live.py" or p.parent.name != "common"]:  # its callers are checked
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0] if node.args else None
            if name == "button" and isinstance(first, ast.Constant) and first.value == "Stop":
                found += [(f"{path}:{node.lineno}", k.value) for k in node.keywords if k.arg == "key"]
            elif name == "progress_and_stop" and len(node.args) >= 2:
                found.append((f"{path}:{node.lineno}", node.args[1]))
    return found


def test_every_page_stop_has_a_key_ending_in_stop_so_the_toolbars_stop_finds_it():
    keys = _stop_keys()
    assert len(keys) >= 10  # Samplers, Ground truth, Inversion, Guidance, the toy lab, Latent, Compare checkpoints
    for where, key in keys:
        last = key.values[-1] if isinstance(key, ast.JoinedStr) else key
        assert isinstance(last, ast.Constant) and str(last.value).endswith("stop"), where
    assert 'c.endsWith("stop")' in live._TOOLBAR_STOP_SCRIPT  # the convention the redirect relies on
