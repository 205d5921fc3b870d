"""Reads a run folder of ours (core/runs/__init__.py) into a `Run`; a missing or broken part becomes a note."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import jsondata
from core.runs.record import Run


def is_our_run(folder: Path) -> bool:
    """A run folder in our own format (config.json or metrics.jsonl): it wins over event files beside it."""
    return (folder / "config.json").is_file() or (folder / "metrics.jsonl").is_file()


def saved_checkpoints(run_folder: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the checkpoints a run folder holds, in step order (half-written ones are not listed:
    they are named step_N.partial until complete)."""
    return _steps_in(Path(run_folder) / "checkpoints", "step_", dirs=True)


def read_metrics(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a metrics.jsonl, and a note per line that could not be read (e.g. a truncated last line)."""
    records, notes = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = jsondata.loads(line)
            except jsondata.TooDeep as e:
                notes.append(f"line {number} {e} and was skipped")
                continue
            except json.JSONDecodeError:
                notes.append(f"line {number} is not valid JSON (truncated?) and was skipped")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                notes.append(f"line {number} is not a JSON object and was skipped")
    return records, notes


def read_run(folder: str | Path, source: str = "runs folder", name: str | None = None) -> Run:
    """Read a run folder; a missing or broken part becomes a note, never an exception."""
    folder = Path(folder)
    notes: list[str] = []
    config: dict[str, Any] = {}
    try:
        with open(folder / "config.json", "rb") as f:
            text = f.read(jsondata.MAX_BYTES + 1)
        if len(text) > jsondata.MAX_BYTES:
            raise ValueError(f"over {jsondata.MAX_BYTES // 2**20} MB")
        loaded = jsondata.loads(text)
        config = loaded if isinstance(loaded, dict) else {}
        if not isinstance(loaded, dict):
            notes.append("config.json does not hold a JSON object")
    except FileNotFoundError:
        notes.append("no config.json")
    except jsondata.TooDeep as e:
        notes.append(f"config.json {e} and was not read")
    except (OSError, UnicodeDecodeError, ValueError) as e:
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
