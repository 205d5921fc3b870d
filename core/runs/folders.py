"""The one place that decides how a folder is read as a run: ours (config.json or metrics.jsonl; it wins over
event files beside it) or TensorBoard's (event files, directly or a few folders down), and every caller asks
here: finding the runs under a runs folder, reading one (again as it grows: `RunReader`), and telling when one
changed on disk."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from core.paths import under
from core.runs import ours, tensorboard
from core.runs.record import Run, run_name
from core.text import plain_label

Format = Literal["ours", "tensorboard"]


def run_format(folder: str | Path) -> Format | None:
    """Which reader `folder` needs, or None when it holds no run."""
    folder = Path(folder)
    if ours.is_our_run(folder):
        return "ours"
    return "tensorboard" if tensorboard.is_tensorboard_folder(folder) else None


class RunReader:
    """The run in one folder, read by the reader its format needs and read again only when it changed on disk:
    ours whole, TensorBoard's from where the last read stopped (tensorboard.TensorBoardReader). Every file is
    opened through core/paths.open_inside with `roots` (a page passes the allowed roots; None: any regular file),
    so one that leads out of them is a note on the run, never read. A page's cache holds one per folder; safe
    to share between threads."""

    def __init__(
        self,
        folder: str | Path,
        source: str = "runs folder",
        name: str | None = None,
        *,
        roots: Sequence[Path] | None = None,
    ) -> None:
        self.folder, self.source, self.name = Path(folder), source, name
        self.roots = None if roots is None else tuple(roots)
        self._lock = threading.Lock()
        self._events: tensorboard.TensorBoardReader | None = None
        self._ours: tuple[tuple[int, ...], Run] | None = None  # (stamp, run) of the last read of ours

    def read(self) -> Run:
        """The run as it is now (ours when the folder holds none: its notes say what is missing). Never raises
        for a broken or partial run; its notes say what was off."""
        with self._lock:
            if run_format(self.folder) == "tensorboard":
                self._ours = None
                if self._events is None:
                    self._events = tensorboard.TensorBoardReader(self.folder, self.source, self.name, roots=self.roots)
                return self._events.read()
            self._events = None
            now = stamp(self.folder)
            if self._ours is None or self._ours[0] != now:
                self._ours = now, ours.read_run(self.folder, self.source, self.name, roots=self.roots)
            return self._ours[1]


def read(
    folder: str | Path, source: str = "runs folder", name: str | None = None, *, roots: Sequence[Path] | None = None
) -> Run:
    """The run in `folder` read once (`RunReader` reads it again as it changes; `roots` as there)."""
    return RunReader(folder, source, name, roots=roots).read()


def stamp(folder: Path) -> tuple[int, ...]:
    """Sizes and times of what changes as a run trains, so a reader's cache knows when to read it again: our
    metrics.jsonl, config.json (written again at the end), checkpoints and samples folders, or the TensorBoard
    event files (how many, their total size, the newest time)."""
    try:
        if run_format(folder) == "tensorboard":
            stats = [path.stat() for path in tensorboard.event_files(folder)]
            return len(stats), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        parts = [folder / "metrics.jsonl", folder / "config.json", folder / "checkpoints", folder / "samples"]
        return tuple(v for p in parts if p.exists() for v in (p.stat().st_size, p.stat().st_mtime_ns))
    except OSError:
        return 0, 0


def _one_run(root: Path) -> Path | None:
    """Where to read `root` as a single run: ours, an output folder whose logs/ holds event files (accelerate's),
    or a writer's folder (event files directly in it; its subfolders are its add_hparams records). A folder whose
    event files all lie in subfolders is a runs folder (PyTorch's `runs/<date>_<host>/`), not one run."""
    if ours.is_our_run(root):
        return root
    if tensorboard.is_tensorboard_folder(root / "logs"):
        return root / "logs"
    return root if tensorboard.is_writer_folder(root) else None


def _runs_in(folder: Path) -> list[Path]:
    """The runs a folder of a runs folder holds: ours in its run/ (`zoo train`'s OUT/run), one run (`_one_run`),
    or, where its event files all lie in subfolders (a `runs/` folder of SummaryWriter's), each writer's folder."""
    if ours.is_our_run(folder / "run"):
        return [folder / "run"]
    if (run := _one_run(folder)) is not None:
        return [run]
    return tensorboard.writer_folders(folder)


def discover_runs(root: str | Path, limit: int = 200) -> tuple[list[Path], list[str]]:
    """Run folders under `root` (a run, or one level of folders each holding a run, a run/ subfolder, or writers'
    folders: our runs and TensorBoard writers' folders side by side, each writer's folder its own run), each as
    `_one_run` gives it, at most `limit`, and a note for every folder there that is not a run. A folder that leads
    out of `root` (a symlink: the folder, or its run/ or logs/) is skipped with a note, unread."""
    root = Path(root)
    if not root.is_dir():
        return [], [f"{plain_label(root.name, 80)} is not a folder"]
    inside = root.resolve()
    if (run := _one_run(root)) is not None:
        return (
            ([run], []) if under(run, inside) else ([], [f"{run.name} leads outside the runs folder and was skipped"])
        )
    found, notes = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir())[:limit]:
        if not under(child, inside):
            notes.append(f"{child.name} leads outside the runs folder and was skipped")
            continue
        runs = _runs_in(child)
        if not runs:
            notes.append(f"{child.name} is not a run (no config.json or metrics.jsonl)")
        for run in runs:
            if not under(run, inside):
                notes.append(f"{run.relative_to(root).as_posix()} leads outside the runs folder and was skipped")
            else:
                found.append(run)
    return found[:limit], notes


def run_title(root: str | Path, folder: Path) -> str:
    """The name of a run `discover_runs(root)` found in `folder`: its path below `root` ("my-run", "runs/May04_10-
    00-00_hostA" for a writer's folder in a runs/ folder), without `zoo train`'s run/ or accelerate's logs/; the
    run's own name (record.run_name) where `root` is the run."""
    parts = Path(folder).relative_to(root).parts
    if parts and parts[-1] in ("run", "logs") and len(parts) == 2:
        parts = parts[:-1]
    return "/".join(parts) if parts and parts != ("logs",) else run_name(Path(folder))
