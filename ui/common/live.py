"""Live updates while work runs in the page script (training, sampling): how often to redraw, and what the
progress line says.

Streamlit sends every element a script draws to the browser, so a loop that redrew at every step would spend
its time drawing. A `Throttle` lets a redraw through at most every `min_interval` seconds, and always the
final one, so a live view costs a bounded share of the work however fast its steps are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.errors import BadInputError
from core.limits import max_job_seconds
from core.training import budget
from ui.common.warmup import wait_for_warmup


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


def job_estimate(estimate: Callable[[], float], what: str = "training", container: Any = None) -> bool:
    """Say, before a job starts, about how long it will take on this server (a caption), or why it is over the
    server's limit per job (a warning with what to lower: core/training/budget.py). True when it may start.

    `estimate` is called here, after the warm-up imports are done: the first estimate in a process measures
    this machine, and measured while those imports hold the interpreter it would read it slow."""
    where = container or st
    wait_for_warmup()
    seconds = estimate()
    try:
        budget.check(seconds, what)
    except BadInputError as e:
        where.warning(str(e), icon=":material/timer_off:")
        return False
    limit = budget.describe(max_job_seconds())
    where.caption(f"About {budget.describe(seconds)} of {what} on this server (its limit: {limit} a job).")
    return True
