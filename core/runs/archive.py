"""A run as a zip of its run folder (core/runs/__init__.py), for a visitor to take a page training home: nothing a
visitor trains is written to the server's disk."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from core.runs.checkpoints import as_json
from core.runs.record import Run, checkpoint_folder


def run_archive(run: Run) -> bytes:
    """config.json, metrics.jsonl and, for a page training, the checkpoints it kept in memory (float32) as
    checkpoints/step_N/ folders; unzipped into a runs folder, the Training logs page reads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{run.name}/config.json", as_json(run.config))
        archive.writestr(f"{run.name}/metrics.jsonl", "".join(json.dumps(r, default=float) + "\n" for r in run.metrics))
        kept = run.snapshots
        for step in kept.steps if kept is not None else []:
            folder = checkpoint_folder(Path(run.name), step).as_posix()
            for name, data in kept.files(step, run.name).items():
                archive.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
