"""Where runs come from for the Training logs page: the bundled zoo and a runs folder (this session's own are
in ui/common/session_runs.py)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.text import plain_label
from core.training.runlog import Run, discover_runs, read_run
from ui.common.cache import registry
from zoo.paths import resolve_allowed, runs_root


def default_runs_folder() -> str:
    return str(runs_root())


@st.cache_resource(max_entries=64, show_spinner=False)
def _read_cached(folder: str, stamp: tuple[int, int], source: str, name: str | None) -> Run:
    """A run read once per (folder, metrics.jsonl size and mtime): re-read only when it grows."""
    return read_run(folder, source, name)


def _stamp(folder: Path) -> tuple[int, int]:
    try:
        stat = (folder / "metrics.jsonl").stat()
        return stat.st_size, stat.st_mtime_ns
    except OSError:
        return 0, 0


def load(folder: Path, source: str, name: str | None = None) -> Run:
    return _read_cached(str(folder), _stamp(folder), source, name)


def bundled_runs() -> list[Run]:
    return [load(m.run, "bundled", m.name) for m in registry().models.values() if m.run is not None and m.run.is_dir()]


def folder_runs(typed: str) -> tuple[list[Run], list[str]]:
    """The runs in a typed folder, which must lie under the allowed roots (zoo/paths.py; else BadInputError)."""
    root = resolve_allowed(typed)
    if not root.exists():
        return [], [f"there is no runs folder at {plain_label(typed, 80)} yet (`python -m zoo train` creates it)"]
    folders, notes = discover_runs(root)
    return [load(f, "runs folder", f.parent.name if f.name == "run" else f.name) for f in folders], notes
