"""The toy lab's per-session state: the model and its live training, samples and their table, drift fields.

Everything a person makes lives in st.session_state, so it belongs to that session alone. Training runs in
the page's own script: Streamlit interrupts a script at its next UI call when a widget is used, so the loop
updates the UI every ~0.3 s; the trainer changes its model and optimizer only between steps, so after Stop
(or any other click) the partial model is intact and "Continue training" resumes it with the same optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import streamlit as st

from core.data.toy import PointCloud
from core.diffusion.fields import DriftField
from core.diffusion.samplers import SAMPLERS
from core.labs.toy import SampleResult, ToyRun, ToySettings, distances, fields, reference, run_sampler
from core.metrics.reference import ReferenceBand
from ui.common import session_runs
from ui.common.live import training_progress
from ui.common.memo import Memo
from ui.toy.controls import FieldChoice, SamplerChoice

RESULT, TABLE, AUTOSAMPLE = "toy_result", "toy_table", "toy_autosample"


@dataclass(frozen=True)
class FieldKey:
    run: str
    step: int
    times: tuple[float, ...]
    mesh: int


FIELDS = Memo[FieldKey, tuple[DriftField, DriftField | None]]("toy-fields")
MAX_ROWS = 200


class Sampled(NamedTuple):
    """A sample run, its distances to fresh data, and what those read for data itself (core/labs/toy.reference)."""

    result: SampleResult
    distances: dict[str, float]
    bands: dict[str, ReferenceBand]


def measured(result: SampleResult, run: ToyRun, seed: int) -> Sampled:
    return Sampled(result, distances(result, run, seed), reference(result, run, seed))


def current_run() -> ToyRun | None:
    """The session's model, once an interrupted run of the page has stopped training it (ToyRun.idle)."""
    run = session_runs.toy_model()
    if run is not None and not run.idle():
        st.warning("An earlier run of this page is still training the model: what is shown may lag behind it.")
    return run


def new_run(cloud: PointCloud, settings: ToySettings) -> ToyRun:
    """A fresh model for `cloud`; its run joins the session's runs (for the Training logs page)."""
    run = ToyRun(cloud, settings, name=session_runs.next_name("toy"))
    session_runs.add(run.log)
    session_runs.set_toy_model(run)
    st.session_state.pop(RESULT, None)
    FIELDS.clear()
    return run


def train_live(run: ToyRun, steps: int, progress_slot, chart_slot) -> None:
    """Train with a progress bar (at most every 0.3 s) and a loss chart (at most every 1.2 s); then sample."""
    st.session_state[AUTOSAMPLE] = True  # sample the model when training ends or is stopped
    run.train(steps, training_progress(progress_slot, chart_slot, run.step, steps, "toy"), every=10)


def show_stopped(run: ToyRun, slot) -> None:
    """Where a training stopped early (a Stop, or any other click), in its progress slot: the line drawn while it
    trained is throttled, so it can be some steps behind the model kept; this line names the model's own step."""
    if run.step < run.target_step:
        slot.progress(
            run.step / run.target_step,
            text=f"Stopped at step {run.step:,} of {run.target_step:,}: the model keeps these {run.step:,} steps "
            "(Continue training adds more).",
        )


def wants_autosample() -> bool:
    """True once after a training run (finished or stopped): the page samples the new model by itself."""
    return bool(st.session_state.pop(AUTOSAMPLE, False))


def sample(run: ToyRun, choice: SamplerChoice) -> Sampled:
    """Sample the run's model, measure the samples against fresh data, and add a row to the table."""
    result = run_sampler(
        run,
        choice.name,
        choice.steps,
        choice.n,
        seed=choice.seed,
        spacing=choice.spacing,
        path_points=choice.path_points,
        clip=choice.clip,
        **choice.options,
    )
    found = st.session_state[RESULT] = measured(result, run, choice.seed)
    add_row(found, run)
    return found


def last_sample() -> Sampled | None:
    return st.session_state.get(RESULT)


def drift_fields(run: ToyRun, choice: FieldChoice) -> tuple[DriftField, DriftField | None]:
    """The learned (and exact) drift fields, computed once per model state, times and mesh in the session."""
    key = FieldKey(run.name, run.step, tuple(choice.times.tolist()), choice.mesh)
    return FIELDS.make(key, lambda: fields(run, choice.times, choice.mesh))


def add_row(found: Sampled, run: ToyRun) -> None:
    """One line of the growing results table."""
    result, dist, bands = found
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
            "SWD, two fresh sets": bands["swd"].span(4),
            "MMD, two fresh sets": bands["mmd"].span(4),
            "Model": f"{run.name} @ {run.step:,} steps",
        }
    )
    del rows[:-MAX_ROWS]


def table_rows() -> list[dict[str, Any]]:
    return list(st.session_state.get(TABLE, []))


def clear_table() -> None:
    st.session_state[TABLE] = []
