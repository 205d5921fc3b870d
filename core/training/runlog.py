"""The run-log format (DESIGN.md): a run is a folder that a person or the Training logs page can read.

    config.json                  every hyper-parameter, data set, seed, hardware, code version, wall time
    metrics.jsonl                one JSON object per logged step: step, loss, lr, seconds, grad_norm, ...
    samples/step_XXXXXXX.png     sample grids saved during training
    checkpoints/step_XXXXXXX/    weights saved during training (EMA where there is EMA), each folder loadable on
                                 its own: config.json, scheduler_config.json and the safetensors weights

Nothing here is pickled; everything is JSON or PNG.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from core.device import describe_device
from core.training import distributed

if TYPE_CHECKING:
    from core.training.checkpoints import Snapshots


def code_version() -> str:
    """The git commit of this checkout (with '-dirty' for local changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def hardware(device: torch.device | str | None = None) -> dict[str, Any]:
    info = describe_device(torch.device(device) if device is not None else None)
    return {
        "device": info.kind,
        "device_name": info.name,
        "torch": info.torch_version,
        "threads": info.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "world_size": distributed.context().world_size,  # processes training data-parallel (torchrun)
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunWriter:
    """Writes one run folder as training goes, so that a crash still leaves a readable log."""

    def __init__(self, folder: str | Path, config: dict[str, Any], device: torch.device | str | None = None) -> None:
        self.folder = Path(folder)
        (self.folder / "samples").mkdir(parents=True, exist_ok=True)
        self.config = {**config, "hardware": hardware(device), "code_version": code_version(), "started": _now()}
        self._write_config()
        self.metrics_path = self.folder / "metrics.jsonl"
        self.metrics_path.write_text("", encoding="utf-8")

    def _write_config(self) -> None:
        (self.folder / "config.json").write_text(
            json.dumps(self.config, indent=2, default=str) + "\n", encoding="utf-8"
        )

    def log(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def save_samples(self, step: int, grid: np.ndarray) -> Path:
        path = self.folder / "samples" / f"step_{step:07d}.png"
        Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(path)
        return path

    def checkpoint_folder(self, step: int) -> Path:
        """Where the weights of `step` go (core/training/checkpoints.py writes them)."""
        return checkpoint_folder(self.folder, step)

    def finish(self, wall_seconds: float, **summary: Any) -> None:
        self.config.update(wall_seconds=round(wall_seconds, 2), finished=_now(), **summary)
        self._write_config()


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


def saved_checkpoints(run_folder: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the checkpoints a run folder holds, in step order (half-written ones are not listed:
    they are named step_N.partial until complete)."""
    return _steps_in(Path(run_folder) / "checkpoints", "step_", dirs=True)


def checkpoint_step(folder: Path) -> int | None:
    """The step of a run's checkpoint folder (RUN/checkpoints/step_N), or None for any other folder."""
    digits = folder.name.removeprefix("step_")
    return int(digits) if folder.parent.name == "checkpoints" and folder.name != digits and digits.isdigit() else None


def read_metrics(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a metrics.jsonl, and a note per line that could not be read (e.g. a truncated last line)."""
    records, notes = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                notes.append(f"line {number} is not valid JSON (truncated?) and was skipped")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                notes.append(f"line {number} is not a JSON object and was skipped")
    return records, notes


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


def is_our_run(folder: Path) -> bool:
    """A run folder in our own format (config.json or metrics.jsonl): it wins over event files beside it."""
    return (folder / "config.json").is_file() or (folder / "metrics.jsonl").is_file()


def is_run_folder(folder: Path) -> bool:
    """A run of ours or a folder of TensorBoard event files (core/training/tensorboard_logs.py: directly or at
    most two subfolders down)."""
    # Imported here: tensorboard_logs builds a Run, so it imports this module.
    from core.training.tensorboard_logs import is_tensorboard_folder

    return is_our_run(folder) or is_tensorboard_folder(folder)


def read_run(folder: str | Path, source: str = "runs folder", name: str | None = None) -> Run:
    """Read a run folder; a missing or broken part becomes a note, never an exception."""
    folder = Path(folder)
    notes: list[str] = []
    config: dict[str, Any] = {}
    try:
        loaded = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = loaded if isinstance(loaded, dict) else {}
        if not isinstance(loaded, dict):
            notes.append("config.json does not hold a JSON object")
    except FileNotFoundError:
        notes.append("no config.json")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        notes.append(f"config.json could not be read ({e.__class__.__name__})")
    metrics: list[dict[str, Any]] = []
    if (folder / "metrics.jsonl").is_file():
        metrics, bad_lines = read_metrics(folder / "metrics.jsonl")
        notes += bad_lines[:5] + ([f"... and {len(bad_lines) - 5} more unreadable lines"] if len(bad_lines) > 5 else [])
    else:
        notes.append("no metrics.jsonl")
    samples = _steps_in(folder / "samples", "step_", suffix=".png")
    if not (folder / "samples").is_dir():
        notes.append("no samples folder")
    return Run(
        name=name or config.get("recipe") or folder.name,
        source=source,
        config=config,
        metrics=metrics,
        samples=samples,
        checkpoints=saved_checkpoints(folder),
        notes=notes,
        folder=folder,
    )


def _steps_in(folder: Path, prefix: str, dirs: bool = False, suffix: str = "") -> list[tuple[int, Path]]:
    """(step, path) of the entries `PREFIXdigitsSUFFIX` in `folder` (folders or files), in step order."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"{prefix}*{suffix}"):
        digits = path.name.removeprefix(prefix).removesuffix(suffix)
        if digits.isdigit() and path.is_dir() == dirs:
            found.append((int(digits), path))
    return sorted(found)


def discover_runs(root: str | Path, limit: int = 200) -> tuple[list[Path], list[str]]:
    """Run folders under `root` (a run, or one level of folders each holding a run or a run/ subfolder),
    and a note for every folder there that is not a run. A run is ours (config.json or metrics.jsonl) or a
    folder of TensorBoard event files, then read from its logs/ subfolder where that holds them (accelerate's
    `<output_dir>/logs/<project>/events...`; see tensorboard_logs.tensorboard_root). A folder that leads out of
    `root` (a symlink) is skipped with a note, unread."""
    # Imported here: tensorboard_logs builds a Run, so it imports this module.
    from core.training.tensorboard_logs import tensorboard_root

    def run_at(folder: Path) -> Path | None:
        return folder if is_our_run(folder) else tensorboard_root(folder)

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


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about max_points points that keep the curve's shape: per bucket its minimum and maximum
    (so spikes survive), plus the first and last point."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = {0, n - 1}
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            segment = y[lo:hi]
            keep.add(lo + int(np.nanargmin(segment)) if np.isfinite(segment).any() else lo)
            keep.add(lo + int(np.nanargmax(segment)) if np.isfinite(segment).any() else hi - 1)
    index = np.fromiter(sorted(keep), dtype=np.int64)
    return x[index], y[index]


def ema(y: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard smooths): 0 = raw, 0.99 = very smooth."""
    if smoothing <= 0 or len(y) == 0:
        return y.astype(np.float64)
    from scipy.signal import lfilter

    values = np.nan_to_num(y.astype(np.float64))
    smooth = lfilter([1 - smoothing], [1, -smoothing], values)
    return smooth / (1 - smoothing ** np.arange(1, len(values) + 1))
