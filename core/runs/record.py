"""One training run in memory (`Run`), whichever way it was made: read from a run folder of ours or a folder of
TensorBoard event files, or trained on a page (then its checkpoints are kept in memory, `Snapshots`). Also the
names of the folders inside a run folder. This module imports nothing of ours, so every reader, writer and page
can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd


class Snapshots(Protocol):
    """A page training's checkpoints, kept in memory (core/training/snapshots.py): their steps, each as the files
    of a checkpoint folder (core/runs/checkpoints.py), and a way to let the weights go."""

    @property
    def steps(self) -> list[int]: ...

    def files(self, step: int, run: str) -> dict[str, bytes]: ...

    def clear(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Run:
    """One training run as read from disk (or built in memory), with notes for anything that was off."""

    name: str
    source: str  # "bundled", "runs folder" or "this session"
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    # (step, image) in step order: a PNG file, or the encoded PNG/JPEG bytes (an image read from TensorBoard)
    samples: list[tuple[int, Path | bytes]] = field(default_factory=list)
    # (step, folder) in step order; the folder is None for a checkpoint kept in memory (a run of this session)
    checkpoints: list[tuple[int, Path | None]] = field(default_factory=list)
    snapshots: Snapshots | None = None  # those kept in memory (a page training)
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None
    # the folders its files may be read from (core/paths.open_inside: sample grids are read when shown); None: any
    roots: tuple[Path, ...] | None = None
    # metric -> (steps, lowest, highest) where a reader thinned its points: the range each kept point stands for
    envelopes: dict[str, tuple[list[int], list[float], list[float]]] = field(default_factory=dict)

    @cached_property
    def table(self) -> pd.DataFrame:
        """The numeric metrics as columns (built once; a 100k-line log takes a fraction of a second)."""
        frame = pd.DataFrame.from_records(self.metrics) if self.metrics else pd.DataFrame()
        numeric = {}
        for name in frame.columns:
            column = pd.to_numeric(frame[name], errors="coerce") if frame[name].dtype == object else frame[name]
            if (
                pd.api.types.is_numeric_dtype(column)
                and not pd.api.types.is_bool_dtype(column)
                and column.notna().any()
            ):
                numeric[name] = column.astype(float)
        return pd.DataFrame(numeric)

    @property
    def keys(self) -> list[str]:
        """Numeric metric names logged anywhere in the run (besides step), in first-seen order."""
        return [k for k in self.table.columns if k != "step"]

    def series(self, key: str, against: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one metric over the records that have both, as float arrays."""
        if key not in self.table or against not in self.table:
            return np.zeros(0), np.zeros(0)
        both = self.table[[against, key]].dropna()
        return both[against].to_numpy(), both[key].to_numpy()


def evenly(items: list[Any], limit: int) -> list[Any]:
    """At most `limit` of the items, spread evenly over them, the first and last kept (frames of a run's sample
    grids, the steps to compare, images read from an event file)."""
    if len(items) <= limit:
        return items
    if limit <= 1:
        return items[-1:] if limit == 1 else []
    return [items[round(k * (len(items) - 1) / (limit - 1))] for k in range(limit)]


def run_name(folder: Path) -> str:
    """A run folder's name: its own, or the one above a run/ (`zoo train`'s OUT/run) or logs/ (accelerate's)."""
    folder = Path(folder)
    return folder.parent.name if folder.name in ("run", "logs") else folder.name


def checkpoint_folder(run_folder: Path, step: int) -> Path:
    return Path(run_folder) / "checkpoints" / f"step_{step:07d}"


def checkpoint_step(folder: Path) -> int | None:
    """The step of a run's checkpoint folder (RUN/checkpoints/step_N), or None for any other folder."""
    digits = folder.name.removeprefix("step_")
    return int(digits) if folder.parent.name == "checkpoints" and folder.name != digits and digits.isdigit() else None
