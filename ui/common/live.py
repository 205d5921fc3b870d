"""Live updates while work runs in the page script (training, sampling): how often to redraw, and what the
progress line says.

Streamlit sends every element a script draws to the browser, so a loop that redrew at every step would spend
its time drawing. A `Throttle` lets a redraw through at most every `min_interval` seconds, and always the
final one, so a live view costs a bounded share of the work however fast its steps are.
"""

from __future__ import annotations

import time


class Throttle:
    """`ready()` is True at most every `min_interval` seconds (and then starts the next interval);
    `ready(final=True)` is always True, so the last state is always drawn."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.last = float("-inf")

    def ready(self, final: bool = False) -> bool:
        now = time.perf_counter()
        if not final and now - self.last < self.min_interval:
            return False
        self.last = now
        return True


def training_line(step: int, total: int, loss: float, steps_done: int, started: float) -> str:
    """'Step 300 of 1,000 · loss 0.1234 · 850 steps/s' (the speed over the steps done since `started`)."""
    speed = steps_done / max(time.perf_counter() - started, 1e-9)
    return f"Step {step:,} of {total:,} · loss {loss:.4f} · {speed:,.0f} steps/s"
