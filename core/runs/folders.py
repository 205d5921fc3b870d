"""The one place that decides how a folder is read as a run: ours (config.json or metrics.jsonl; it wins over
event files beside it) or TensorBoard's (event files, directly or a few folders down), and every caller asks
here: finding the runs under a runs folder, reading one, and telling when one changed on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from core.runs import ours, tensorboard
from core.runs.record import Run

Format = Literal["ours", "tensorboard"]


def run_format(folder: str | Path) -> Format | None:
    """Which reader `folder` needs, or None when it holds no run."""
    folder = Path(folder)
    if ours.is_our_run(folder):
        return "ours"
    return "tensorboard" if tensorboard.is_tensorboard_folder(folder) else None


def run_at(folder: Path) -> Path | None:
    """The folder to read the run in `folder` from: itself for ours; for TensorBoard's, its logs/ subfolder where
    that holds the event files (tensorboard.tensorboard_root); None when it holds no run."""
    return folder if ours.is_our_run(folder) else tensorboard.tensorboard_root(folder)


def read(folder: str | Path, source: str = "runs folder", name: str | None = None) -> Run:
    """The run in `folder` read by the reader its format needs (ours when it holds none: its notes say what is
    missing). Never raises for a broken or partial run; its notes say what was off."""
    if run_format(folder) == "tensorboard":
        return tensorboard.read_tensorboard_run(folder, source, name)
    return ours.read_run(folder, source, name)


def stamp(folder: Path) -> tuple[int, ...]:
    """Sizes and times of what changes as a run trains, so a reader's cache knows when to read it again: our
    metrics.jsonl, config.json (written again at the end), checkpoints and samples folders, or the newest
    TensorBoard event file."""
    try:
        if run_format(folder) == "tensorboard":
            stats = [path.stat() for path in tensorboard.event_files(folder)]
            newest = max(stats, key=lambda s: s.st_mtime_ns, default=None)
            return (newest.st_size, newest.st_mtime_ns) if newest is not None else (0, 0)
        parts = [folder / "metrics.jsonl", folder / "config.json", folder / "checkpoints", folder / "samples"]
        return tuple(v for p in parts if p.exists() for v in (p.stat().st_size, p.stat().st_mtime_ns))
    except OSError:
        return 0, 0


def discover_runs(root: str | Path, limit: int = 200) -> tuple[list[Path], list[str]]:
    """Run folders under `root` (a run, or one level of folders each holding a run or a run/ subfolder), each as
    `run_at` gives it, and a note for every folder there that is not a run. A folder that leads out of `root`
    (a symlink) is skipped with a note, unread."""
    root = Path(root)
    if not root.is_dir():
        return [], [f"{root} is not a folder"]
    if (run := run_at(root)) is not None:
        return [run], []
    inside = root.resolve()
    found, notes = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir())[:limit]:
        if not child.resolve().is_relative_to(inside):
            notes.append(f"{child.name} leads outside the runs folder and was skipped")
        elif (run := run_at(child / "run") or run_at(child)) is not None:
            found.append(run)
        else:
            notes.append(f"{child.name} is not a run (no config.json or metrics.jsonl)")
    return found, notes
