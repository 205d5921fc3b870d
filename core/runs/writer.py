"""Writes a run folder (core/runs/__init__.py) as training goes: `python -m zoo train` and the bundled recipes."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.device import describe_device
from core.runs.record import checkpoint_folder
from core.training import distributed


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
        """Where the weights of `step` go (core/runs/checkpoints.py writes them)."""
        return checkpoint_folder(self.folder, step)

    def finish(self, wall_seconds: float, **summary: Any) -> None:
        self.config.update(wall_seconds=round(wall_seconds, 2), finished=_now(), **summary)
        self._write_config()
