"""The runs trained on the pages of this session (toy models, VAEs, latent models), for the Training logs page.

Each is a core.training.runlog.Run whose metrics list is the trainer's own, so it grows while the model trains;
they live in st.session_state, so every session sees only its own. The newest MAX_RUNS are kept, and the
newest MAX_WITH_CHECKPOINTS of them keep their checkpoints.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.training.runlog import Run

RUNS, COUNTS = "session_runs", "session_run_counts"
MAX_RUNS = 40
MAX_WITH_CHECKPOINTS = 3  # the newest runs that keep their checkpoints in memory; older ones keep their logs


def next_name(kind: str) -> str:
    """'toy-1', 'toy-2', 'vae-1', ...: numbered per kind, per session."""
    counts = st.session_state.setdefault(COUNTS, {})
    counts[kind] = counts.get(kind, 0) + 1
    return f"{kind}-{counts[kind]}"


def add(run: Run) -> None:
    runs = st.session_state.setdefault(RUNS, [])
    runs.append(run)
    del runs[:-MAX_RUNS]
    for older in [r for r in runs if r.snapshots is not None][:-MAX_WITH_CHECKPOINTS]:
        older.snapshots.clear()  # bounds the session's memory


def session_runs() -> list[Run]:
    """This session's runs as they stand now (a copy of each, so their metric tables are built afresh)."""
    return [replace(run, metrics=list(run.metrics)) for run in st.session_state.get(RUNS, [])]
