"""Where runs come from, for the Training logs and Compare checkpoints pages: the bundled zoo and a runs folder,
whose runs are our own run folders or folders of TensorBoard event files (this session's own are in
ui/common/session_runs.py); and which of them saved checkpoints a UNet can be loaded from. Every file of a run is
read through core/paths.open_inside: a runs folder's within the allowed roots, a bundled run's within its own
folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from core.errors import AtlasError
from core.paths import allowed_roots, resolve_allowed, runs_root
from core.runs import folders
from core.runs.record import Run
from core.text import plain_label
from ui.common import session_runs
from ui.common.cache import CACHE_TTL, registry
from zoo.local import WEIGHTS


def default_runs_folder() -> str:
    return str(runs_root())


@st.cache_resource(max_entries=64, ttl=CACHE_TTL, show_spinner=False)
def _reader(folder: str, source: str, name: str | None, roots: tuple[str, ...]) -> folders.RunReader:
    """One reader per run folder (and roots), shared by every session: it reads the run again only when it
    changed on disk, a growing TensorBoard log only from where it stopped."""
    return folders.RunReader(folder, source, name, roots=[Path(r) for r in roots])


def load(folder: Path, source: str, name: str | None, roots: Sequence[Path]) -> Run:
    """The run in `folder`, each of its files read only where it lies inside `roots` (resolved)."""
    return _reader(str(folder), source, name, tuple(map(str, roots))).read()


def bundled_runs() -> list[Run]:
    models = registry().models.values()
    return [load(m.run, "bundled", m.name, [m.run]) for m in models if m.run is not None and m.run.is_dir()]


def folder_runs(typed: str) -> tuple[list[Run], list[str]]:
    """The runs in a typed folder, which must lie under the allowed roots (core/paths.py; else BadInputError)."""
    root = resolve_allowed(typed)
    if not root.exists():
        return [], [f"there is no runs folder at {plain_label(typed, 80)} yet (`python -m zoo train` creates it)"]
    found, notes = folders.discover_runs(root)
    roots = allowed_roots()
    return [load(f, "runs folder", folders.run_title(root, f), roots) for f in found], notes


OPEN_OVER_TRAINING = "ck-open-over-training"  # set by the Training logs page's button: open that tab


def run_label(run: Run) -> str:
    """How the Compare checkpoints page names a run (the Training logs page preselects it by this label)."""
    return f"{run.name} · {run.source}"


def runs_with_unet_checkpoints() -> dict[str, Run]:
    """Runs in the runs folder (ATLAS_RUNS) whose checkpoints are UNet folders (a latent model's MLP ones are
    not images to compare), by label."""
    try:
        runs, _ = folder_runs(default_runs_folder())
    except AtlasError:
        return {}
    return {
        run_label(r): r
        for r in runs
        if r.checkpoints and r.checkpoints[-1][1] is not None and (r.checkpoints[-1][1] / WEIGHTS[0]).is_file()
    }


def over_training_runs() -> dict[str, Run]:
    """The runs the Over training tab can compare: those in the runs folder that saved UNet checkpoints, and the
    Toy lab's current model (its checkpoints are kept in memory, in this session)."""
    runs = runs_with_unet_checkpoints()
    toy = session_runs.toy_model()
    if toy is not None and toy.snapshots.steps:
        runs[run_label(toy.log)] = toy.log
    return runs
