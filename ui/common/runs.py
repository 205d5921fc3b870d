"""Where runs come from, for the Training logs and Compare checkpoints pages: the bundled zoo and a runs folder,
whose runs are our own run folders or folders of TensorBoard event files (this session's own are in
ui/common/session_runs.py); and which of them saved checkpoints a UNet can be loaded from."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import AtlasError
from core.text import plain_label
from core.training.runlog import Run, discover_runs, is_our_run, read_run, run_name
from core.training.tensorboard_logs import event_files, is_tensorboard_folder, read_tensorboard_run
from ui.common.cache import registry
from zoo.local import WEIGHTS
from zoo.paths import resolve_allowed, runs_root


def default_runs_folder() -> str:
    return str(runs_root())


def _is_tensorboard(folder: Path) -> bool:
    """A folder of TensorBoard event files and not a run of ours (our format wins where both are present)."""
    return not is_our_run(folder) and is_tensorboard_folder(folder)


@st.cache_resource(max_entries=64, show_spinner=False)
def _read_cached(folder: str, stamp: tuple[int, int], source: str, name: str | None, tensorboard: bool) -> Run:
    """A run read once per (folder, stamp): re-read only when its log grows."""
    if tensorboard:
        return read_tensorboard_run(folder, source, name)
    return read_run(folder, source, name)


def _stamp(folder: Path, tensorboard: bool) -> tuple[int, ...]:
    """Sizes and times of what changes as a run trains: metrics.jsonl, the checkpoints and samples folders and
    config.json (written again at the end), or the newest TensorBoard event file."""
    try:
        if tensorboard:
            stats = [path.stat() for path in event_files(folder)]
            newest = max(stats, key=lambda s: s.st_mtime_ns, default=None)
            return (newest.st_size, newest.st_mtime_ns) if newest is not None else (0, 0)
        parts = [folder / "metrics.jsonl", folder / "config.json", folder / "checkpoints", folder / "samples"]
        return tuple(v for p in parts if p.exists() for v in (p.stat().st_size, p.stat().st_mtime_ns))
    except OSError:
        return 0, 0


def load(folder: Path, source: str, name: str | None = None) -> Run:
    tensorboard = _is_tensorboard(folder)
    return _read_cached(str(folder), _stamp(folder, tensorboard), source, name, tensorboard)


def bundled_runs() -> list[Run]:
    return [load(m.run, "bundled", m.name) for m in registry().models.values() if m.run is not None and m.run.is_dir()]


def folder_runs(typed: str) -> tuple[list[Run], list[str]]:
    """The runs in a typed folder, which must lie under the allowed roots (zoo/paths.py; else BadInputError)."""
    root = resolve_allowed(typed)
    if not root.exists():
        return [], [f"there is no runs folder at {plain_label(typed, 80)} yet (`python -m zoo train` creates it)"]
    folders, notes = discover_runs(root)
    return [load(f, "runs folder", run_name(f)) for f in folders], notes


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
