"""The toy lab's per-session state and the live-training driver.

Everything a person makes (the model, its optimizer, samples, fields, the results table, run records)
lives in st.session_state, so it belongs to that session alone. Training runs in the page's own script:
Streamlit interrupts a script at its next UI call when a widget is used, so the loop updates the UI every
~0.3 s; the trainer changes its model and optimizer only between steps, so after Stop (or any other
click) the partial model is intact and "Continue training" resumes it with the same optimizer.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.data.toy import PointCloud
from core.samplers import SAMPLERS
from core.toy_lab import ToyRun, ToySettings
from core.toy_sampling import SampleResult
from core.training import DiffusionTrainer
from ui.toy_figures import loss_figure

RUN, RUNS, RESULT, TABLE, FIELD, COUNT = "toy_run", "toy_runs", "toy_result", "toy_table", "toy_field", "toy_count"
MAX_RECORDS, MAX_ROWS = 20, 200


def current_run() -> ToyRun | None:
    return st.session_state.get(RUN)


def new_run(cloud: PointCloud, settings: ToySettings) -> ToyRun:
    """A fresh model for `cloud`; its run record joins the session's list (the last MAX_RECORDS kept)."""
    records = st.session_state.setdefault(RUNS, [])
    count = st.session_state[COUNT] = st.session_state.get(COUNT, 0) + 1
    run = ToyRun(cloud, settings, name=f"toy-{count}")
    records.append(run.record)
    del records[:-MAX_RECORDS]
    st.session_state[RUN] = run
    for key in (RESULT, FIELD):
        st.session_state.pop(key, None)
    return run


def run_records() -> list[dict[str, Any]]:
    """The session's toy training runs in the run-log shape: {"name", "kind", "config", "metrics"}."""
    return list(st.session_state.get(RUNS, []))


def train_live(run: ToyRun, steps: int, progress_slot, chart_slot, ui_every: float = 0.3) -> None:
    """Train with a progress bar (every ~ui_every s) and a loss chart (every ~4 ui_every s)."""
    start, tic = run.step, time.perf_counter()
    last = {"bar": 0.0, "chart": 0.0, "step": -1}

    def update(tr: DiffusionTrainer, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - last["bar"] >= ui_every:
            done = tr.step - start
            speed = done / max(now - tic, 1e-9)
            loss = tr.metrics[-1]["loss"] if tr.metrics else float("nan")
            progress_slot.progress(
                done / steps, text=f"Step {tr.step:,} of {start + steps:,} · loss {loss:.4f} · {speed:,.0f} steps/s"
            )
            last["bar"] = now
        if len(tr.metrics) >= 3 and tr.step != last["step"] and (force or now - last["chart"] >= 4 * ui_every):
            chart_slot.plotly_chart(loss_figure(tr.metrics), key=f"toy-loss-live-{tr.step}")
            last["chart"], last["step"] = now, tr.step

    run.train(steps, update, every=10)
    update(run.trainer, force=True)


def add_row(result: SampleResult, dist: dict[str, float], run: ToyRun) -> None:
    """One line of the growing results table."""
    lab = result.label
    options = ", ".join(f"{k}={v}" for k, v in lab.items() if k not in ("sampler", "steps", "spacing", "seed", "n"))
    rows = st.session_state.setdefault(TABLE, [])
    rows.append(
        {
            "Sampler": SAMPLERS[lab["sampler"]].title,
            "Options": options or "-",
            "Steps": lab["steps"],
            "Spacing": lab["spacing"],
            "NFE": result.nfe,
            "Points": lab["n"],
            "Seconds": round(result.seconds, 3),
            "SWD": round(dist["swd"], 4),
            "MMD": round(dist["mmd"], 4),
            "Model": f"{run.record['name']} @ {run.step:,} steps",
        }
    )
    del rows[:-MAX_ROWS]


def table_rows() -> list[dict[str, Any]]:
    return list(st.session_state.get(TABLE, []))


def clear_table() -> None:
    st.session_state[TABLE] = []
