"""Reads a run folder of ours (core/runs/__init__.py) into a `Run`; a missing or broken part becomes a note.

Every file read is opened once through core/paths.open_inside with the caller's roots (the pages pass the
allowed roots) and read from that handle: config.json or metrics.jsonl leading out of the roots (a link), not a
regular file, or swapped for a link while it is opened is not read, and a note says so. Sample grids are listed
here and read by the page; one that leads out of the roots or is not a regular file is left out of the list."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core import jsondata
from core.errors import AtlasError
from core.paths import inside_roots, open_inside, shown
from core.runs.record import Run


def is_our_run(folder: Path) -> bool:
    """A run folder in our own format (config.json or metrics.jsonl): it wins over event files beside it."""
    return (folder / "config.json").is_file() or (folder / "metrics.jsonl").is_file()


def saved_checkpoints(run_folder: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the checkpoints a run folder holds, in step order (half-written ones are not listed:
    they are named step_N.partial until complete). Listed only: their files are read, and checked, where a
    checkpoint is loaded (zoo/local.py)."""
    return _steps_in(Path(run_folder) / "checkpoints", "step_", dirs=True)


def read_metrics(path: str | Path, roots: Sequence[Path] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a metrics.jsonl, and a note per line that could not be read (e.g. a truncated last line). The
    file is opened by core/paths.open_inside with `roots` (None: any regular file); one it refuses raises its
    AtlasError with a sentence."""
    records, notes = [], []
    with open_inside(Path(path), roots) as handle, io.TextIOWrapper(handle, "utf-8", errors="replace") as f:
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


def read_run(
    folder: str | Path,
    source: str = "runs folder",
    name: str | None = None,
    *,
    roots: Sequence[Path] | None = None,
) -> Run:
    """Read a run folder, each file through core/paths.open_inside with `roots` (None: any regular file); a
    missing, broken or refused part becomes a note, never an exception."""
    folder = Path(folder)
    notes: list[str] = []
    config = _read_config(folder / "config.json", roots, notes)
    metrics: list[dict[str, Any]] = []
    if os.path.lexists(folder / "metrics.jsonl"):
        try:
            metrics, bad_lines = read_metrics(folder / "metrics.jsonl", roots)
        except AtlasError as e:  # outside the roots, not a file, or a link swapped in while it was opened
            bad_lines = [_clause(e)]
        notes += bad_lines[:5] + ([f"... and {len(bad_lines) - 5} more unreadable lines"] if len(bad_lines) > 5 else [])
    else:
        notes.append("no metrics.jsonl")
    samples = _steps_in(folder / "samples", "step_", suffix=".png")
    if not (folder / "samples").is_dir():
        notes.append("no samples folder")
    kept, left_out = [], []
    for step, path in samples:  # read when shown, through open_inside with `roots`; listed only if they may be
        ok = path.is_file() and (roots is None or inside_roots(path, roots))
        (kept if ok else left_out).append((step, path))
    if left_out:
        notes.append(
            f"{len(left_out)} sample grids lead outside the folders this app reads or are not regular files, so "
            f"they are not shown (e.g. {shown(left_out[0][1], roots)})"
        )
    return Run(
        name=name or config.get("recipe") or folder.name,
        source=source,
        config=config,
        metrics=metrics,
        samples=kept,
        checkpoints=saved_checkpoints(folder),
        notes=notes,
        folder=folder,
        roots=None if roots is None else tuple(roots),
    )


def _read_config(path: Path, roots: Sequence[Path] | None, notes: list[str]) -> dict[str, Any]:
    """config.json's object ({} when there is none, with a note saying why)."""
    if not os.path.lexists(path):
        notes.append("no config.json")
        return {}
    try:
        with open_inside(path, roots) as f:
            text = f.read(jsondata.MAX_BYTES + 1)
        if len(text) > jsondata.MAX_BYTES:
            raise ValueError(f"over {jsondata.MAX_BYTES // 2**20} MB")
        loaded = jsondata.loads(text)
    except AtlasError as e:  # outside the roots, not a file, or a link swapped in while it was opened
        notes.append(_clause(e))
        return {}
    except jsondata.TooDeep as e:
        notes.append(f"config.json {e} and was not read")
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        notes.append(f"config.json could not be read ({e.__class__.__name__})")
        return {}
    if not isinstance(loaded, dict):
        notes.append("config.json does not hold a JSON object")
        return {}
    return loaded


def _clause(error: AtlasError) -> str:
    """An error's sentence as a run's note (the pages add the full stop)."""
    return str(error).removesuffix(".")


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
