"""Live updates while work runs in the page script (training, sampling): how often to redraw, and what the
progress line says.

Streamlit sends every element a script draws to the browser, so a loop that redrew at every step would spend
its time drawing. A `Throttle` lets a redraw through at most every `min_interval` seconds, and always the
final one, so a live view costs a bounded share of the work however fast its steps are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from core.errors import BadInputError
from core.limits import max_job_seconds
from core.training import budget
from ui.common.charts import loss_figure
from ui.common.warmup import wait_for_warmup


class Throttle:
    """`ready()` is True at most every `min_interval` seconds (and then starts the next interval);
    `ready(final=True)` is always True, so the last state is always drawn."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.last = float("-inf")

    def ready(self, final: bool = False, now: float | None = None) -> bool:
        now = time.perf_counter() if now is None else now
        if not final and now - self.last < self.min_interval:
            return False
        self.last = now
        return True


class ProgressBar:
    """A progress bar (an `st.progress` element, or a placeholder it is drawn into) redrawn at most every `every`
    seconds, and always for the first and the finished state. Its text ends with the time left, measured on the
    work done so far (so it follows the machine's load, unlike an estimate made before the start). Each redraw is
    also where Streamlit ends the run when the session goes away (a closed tab): no work goes on for nobody."""

    def __init__(self, slot: Any, every: float = 0.3) -> None:
        self.slot, self.throttle = slot, Throttle(every)
        self.start: tuple[float, float] | None = None  # (share, time) when first shown

    def show(self, share: float, text: str) -> None:
        """The bar at `share` (0 to 1) of the work, with `text` (and the time left) beside it."""
        share = min(1.0, max(0.0, share))
        now = time.perf_counter()
        if self.start is None:
            self.start = (share, now)
        if self.throttle.ready(final=share >= 1, now=now):
            self.slot.progress(share, text=text + time_left(*self.start, share, now))


def time_left(start_share: float, started: float, share: float, now: float) -> str:
    """' · about 40 s left' at the pace since (`start_share`, `started`), once that pace is worth a guess (a
    second of work and 2% of the job behind it); '' before that and at the end."""
    done, spent = share - start_share, now - started
    if share >= 1 or done < 0.02 or spent < 1.0:
        return ""
    return f" · about {budget.describe(spent * (1 - share) / done)} left"


@contextmanager
def progress_and_stop(text: str, key: str, stop_help: str) -> Iterator[ProgressBar]:
    """A progress bar and a Stop button (widget key `key`) above the results while the work runs, removed after
    it: finished, or refused midway (a Stop or a closed tab ends the run before)."""
    holder = st.empty()
    with holder.container():
        bar = ProgressBar(st.progress(0.0, text=text))
        st.button("Stop", key=key, help=stop_help)
    try:
        yield bar
    finally:
        holder.empty()


# Streamlit's own Stop (the toolbar's, top right) ends the script wherever it is: the page is left half drawn and
# no code of ours runs until the next click. While a job with its own Stop runs, this makes the toolbar's Stop press
# the page's (the first shown button whose key ends in "stop"), so both end the job the same way: a rerun that shows
# what was done, with its sentence. Without a page Stop on screen the toolbar's Stop does what it always does.
_TOOLBAR_STOP_SCRIPT = """<script>
(() => {
  if (window.atlasToolbarStop) return;
  window.atlasToolbarStop = true;
  const isStopKey = (c) => c.startsWith("st-key-") && c.endsWith("stop");
  document.addEventListener("click", (event) => {
    const toolbar = event.target.closest('[data-testid="stStatusWidget"] button');
    if (!toolbar || toolbar.textContent.trim() !== "Stop") return;
    const page = [...document.querySelectorAll('[class*="st-key-"]')].find(
      (el) => [...el.classList].some(isStopKey) && el.offsetParent !== null);
    const button = page && page.querySelector("button:not([disabled])");
    if (!button) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    button.click();
  }, true);
})();
</script>"""


def toolbar_stop_presses_page_stop() -> None:
    """Install the toolbar-Stop redirect above in the browser (once per page load; cheap to call on every run)."""
    st.sidebar.html(_TOOLBAR_STOP_SCRIPT, unsafe_allow_javascript=True)


def training_line(step: int, total: int, loss: float, steps_done: int, started: float) -> str:
    """'Step 300 of 1,000 · loss 0.1234 · 850 steps/s' (the speed over the steps done since `started`)."""
    speed = steps_done / max(time.perf_counter() - started, 1e-9)
    return f"Step {step:,} of {total:,} · loss {loss:.4f} · {speed:,.0f} steps/s"


def training_progress(
    progress_slot: Any,
    chart_slot: Any,
    start: int,
    steps: int,
    key: str,
    bar_every: float = 0.3,
    chart_every: float = 1.2,
) -> Callable[[Any], None]:
    """A trainer callback (core/training/diffusion.DiffusionTrainer) that redraws a progress bar with the
    training line (at most every `bar_every` s) and the loss chart (every `chart_every` s) for a run going
    from step `start` to `start + steps`; the last step is always drawn. `key` prefixes the charts' keys."""
    bar, chart = ProgressBar(progress_slot, bar_every), Throttle(chart_every)
    started, target = time.perf_counter(), start + steps

    def update(trainer: Any) -> None:
        budget.check_deadline()  # a training run past the server's limit per job stops here, its steps kept
        metrics = trainer.metrics
        loss = metrics[-1]["loss"] if metrics else float("nan")
        bar.show(
            (trainer.step - start) / steps, training_line(trainer.step, target, loss, trainer.step - start, started)
        )
        if len(metrics) >= 3 and chart.ready(final=trainer.step >= target):
            chart_slot.plotly_chart(loss_figure(metrics), key=f"{key}-loss-live-{trainer.step}")

    return update


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
