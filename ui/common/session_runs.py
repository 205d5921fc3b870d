"""The runs trained on the pages of this session (toy models, VAEs, latent models), for the Training logs page.

Each is a core.runs.record.Run whose metrics list is the trainer's own, so it grows while the model trains;
they live in st.session_state, so every session sees only its own. The newest ATLAS_MAX_SESSION_RUNS are kept,
and the newest ATLAS_SESSION_CHECKPOINTS of them keep their checkpoints (core/limits.py). The Toy lab's current
data and model are here too: the Ground truth page fits a mixture to that data, and the Compare checkpoints page
compares the model's kept checkpoints over training.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.data.toy import PointCloud
from core.labs.toy import ToyRun
from core.limits import max_session_runs, session_checkpoints
from core.runs.record import Run
from ui.common.memo import Memo

RUNS, COUNTS, TOY = "session_runs", "session_run_counts", "toy_run"
# The Toy lab's data set, by the key of what made it (PointCloud.key: the set, its parameters, size and seed).
TOY_CLOUD = Memo[str, PointCloud]("toy-cloud")


def next_name(kind: str) -> str:
    """'toy-1', 'toy-2', 'vae-1', ...: numbered per kind, per session."""
    counts = st.session_state.setdefault(COUNTS, {})
    counts[kind] = counts.get(kind, 0) + 1
    return f"{kind}-{counts[kind]}"


def add(run: Run) -> None:
    runs = st.session_state.setdefault(RUNS, [])
    runs.append(run)
    del runs[: -max_session_runs()]
    kept = [r for r in runs if r.snapshots is not None]
    for older in kept[: len(kept) - session_checkpoints()]:
        older.snapshots.clear()  # bounds the session's memory


def session_runs() -> list[Run]:
    """This session's runs as they stand now (a copy of each, so their metric tables are built afresh)."""
    return [replace(run, metrics=list(run.metrics)) for run in st.session_state.get(RUNS, [])]


def toy_model() -> ToyRun | None:
    """The Toy lab's current model in this session, if it has one."""
    return st.session_state.get(TOY)


def set_toy_model(run: ToyRun) -> None:
    st.session_state[TOY] = run
