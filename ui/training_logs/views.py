"""Which runs the Training logs page opens with, and their checkpoints: listed by step beside the sample grids,
with a way into the Compare checkpoints page's Over training tab (for the runs ui/common/runs.over_training_runs
lists)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from core.runs.archive import run_archive
from core.runs.record import Run
from core.text import plain_label
from ui.common.runs import OPEN_OVER_TRAINING, over_training_runs, run_label
from ui.common.tables import show_table

COMPARE_PAGE = "app_pages/compare_checkpoints.py"


def _megabytes(folder: Path | None) -> float | None:
    if folder is None:
        return None
    try:
        return round(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6, 2)
    except OSError:  # removed since the run was read
        return None


def default_runs(runs: Mapping[str, Run]) -> list[str]:
    """The run the page opens with (by label): the newest trained on a page this session, else the first listed."""
    own = [label for label, run in runs.items() if run.source == "this session"]
    return own[-1:] or list(runs)[:1]


def at_step(run: Run, step: int) -> str:
    """A line for the grid of `step`: where its checkpoint is, or which steps have one."""
    kept = dict(run.checkpoints)
    if step in kept:
        where = "kept in memory (this session)" if kept[step] is None else f"`{kept[step].name}/`"
        return f"Checkpoint at step {step:,}: {where}"
    return f"No checkpoint at step {step:,} (this run has {len(kept)}, listed below)."


def checkpoints(selected: list[Run]) -> None:
    """The Checkpoints section: every selected run that saved checkpoints, each with its table."""
    kept = [run for run in selected if run.checkpoints]
    if not kept:
        return
    st.subheader("Checkpoints")
    names = Counter(run.name for run in kept)
    for run in kept:
        if len(kept) > 1:
            st.markdown(f"**{plain_label(run.name, 60)}** · {run.source}")
        table(run, run.name if names[run.name] == 1 else run_label(run))


def table(run: Run, key: str) -> None:
    """Every checkpoint by step, with its size and whether a sample grid was saved at that step, and a button
    to compare them over training (`key` sets its widgets apart)."""
    grids = {s for s, _ in run.samples}
    rows = [
        {
            "step": step,
            "weights": "in memory" if folder is None else f"checkpoints/{folder.name}/",
            "MB": _megabytes(folder),
            "sample grid": "yes" if step in grids else "no",
        }
        for step, folder in run.checkpoints
    ]
    show_table(rows, width="stretch", height=min(300, 38 + 35 * len(rows)))  # MB: a dash for weights in memory
    if run.snapshots is not None:
        zipped = lambda: run_archive(run)  # noqa: E731 (built only when clicked)
        st.download_button(
            "Download the run with its checkpoints (zip)",
            zipped,
            f"{run.name}.zip",
            "application/zip",
            key=f"logs-zip-{key}",
            on_click="ignore",
            help="A run folder (config, metrics, checkpoints/step_N/ in safetensors) to unzip into "
            "a runs folder: page trainings are kept only in this session's memory.",
        )
    comparable = run_label(run) in over_training_runs()
    if comparable and st.button("Compare these checkpoints over training", key=f"logs-compare-{key}"):
        st.session_state["ot-run"] = run_label(run)
        st.session_state[OPEN_OVER_TRAINING] = True
        st.switch_page(COMPARE_PAGE)
    elif not comparable:
        st.caption(
            "Compare checkpoints' Over training tab takes the Toy lab's current model and the runs folder's UNet "
            "runs, so this run's checkpoints are listed here only."
        )
