"""The live-progress pieces every long job on a page uses (ui/common/live.py)."""

from __future__ import annotations

from ui.common.live import ProgressBar


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
