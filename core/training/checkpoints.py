"""Weights a network can be rebuilt from, written as diffusers writes them, so every checkpoint folder loads on
its own (here, in diffusers, or on the Hub):

    config.json              the network's settings (a UNet2DModel's as diffusers names them)
    <weights>.safetensors    the tensors, fp16 by default (upcast to float32 on load)
    scheduler_config.json    the noise schedule and prediction target, as a DDPMScheduler config (exact betas)
    atlas.json               what diffusers has no field for: step, data set, classes, which weights (EMA or raw)

A page's training keeps its checkpoints in memory (`Snapshots`) and a visitor takes them home as a zip of the
same run folder (`run_archive`): nothing a visitor trains is written to the server's disk. Nothing here is
pickled.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes

from core.diffusion.schedules import DIFFUSERS_NAMES, NoiseSchedule
from core.training.runlog import Run, checkpoint_folder

ATLAS_FILE = "atlas.json"


def _json(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, default=str) + "\n").encode()


def _state(
    module_or_state: torch.nn.Module | Mapping[str, torch.Tensor], dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """CPU copies, contiguous: the trainer's flat-buffer views share storage, which safetensors refuses."""
    state = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else module_or_state
    return {k: v.detach().to("cpu", dtype).contiguous().clone() for k, v in state.items()}


def save_weights(
    module: torch.nn.Module,
    folder: Path,
    filename: str,
    config: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """config.json + the module's weights as safetensors (fp16 halves the files; loaders upcast)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_bytes(safetensors_bytes(_state(module, dtype)))
    (folder / "config.json").write_bytes(_json(config))
    return folder / filename


def scheduler_config(schedule: NoiseSchedule, prediction_type: str) -> dict[str, Any]:
    """The schedule as diffusers reads it: for the flow path, FlowMatchEulerDiscreteScheduler's settings (T and
    the shift; its model predicts the velocity); otherwise DDPMScheduler's with the exact betas (every kind, ours
    too) and the diffusers name of the kind where diffusers has one (for people reading the file)."""
    if schedule.path == "flow":
        return {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": schedule.num_steps,
                "shift": schedule.shift}  # fmt: skip
    config: dict[str, Any] = {
        "_class_name": "DDPMScheduler",
        "num_train_timesteps": schedule.num_steps,
        "trained_betas": schedule.betas.tolist(),
        "prediction_type": prediction_type,
    }
    if schedule.name in DIFFUSERS_NAMES:
        config["beta_schedule"] = DIFFUSERS_NAMES[schedule.name]
    return config


def checkpoint_files(
    weights: torch.nn.Module | Mapping[str, torch.Tensor],
    weights_name: str,
    config: dict[str, Any],
    schedule: NoiseSchedule,
    prediction_type: str,
    /,
    dtype: torch.dtype = torch.float16,
    **atlas: Any,
) -> dict[str, bytes]:
    """One checkpoint folder's files by name (see the module docstring); `atlas` goes to atlas.json."""
    return {
        weights_name: safetensors_bytes(_state(weights, dtype)),
        "config.json": _json(config),
        "scheduler_config.json": _json(scheduler_config(schedule, prediction_type)),
        ATLAS_FILE: _json(atlas),
    }


def save_checkpoint(folder: Path, *args: Any, **kwargs: Any) -> Path:
    """Write `checkpoint_files(*args, **kwargs)` as the folder `folder`: into FOLDER.partial first, then renamed,
    so a reader (the Training logs page during a training) sees a whole checkpoint or none."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, data in checkpoint_files(*args, **kwargs).items():
        (partial / name).write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)  # a run written again into the same folder
    os.replace(partial, folder)
    return folder


class Snapshots:
    """A page training's checkpoints, kept in memory (a visitor's training writes nothing to the server's disk):
    a copy of the sampling weights (EMA where there is EMA) at least `every` steps apart, and wherever training
    ends or is stopped. Past `keep` copies every other one is dropped, so they keep spanning the whole run at a
    bounded cost; the newest is always kept.

    `listing` is the run record's view, [(step, None)] in step order (runlog.Run.checkpoints: None = in memory).
    `config`, `schedule` and `prediction_type` are what a checkpoint folder needs besides the weights.
    """

    def __init__(
        self,
        every: int,
        config: dict[str, Any],
        schedule: NoiseSchedule,
        prediction_type: str,
        keep: int = 16,
        weights_name: str = "model.safetensors",
    ) -> None:
        self.every, self.keep = every, keep
        self.config, self.schedule = config, schedule
        self.prediction_type, self.weights_name = prediction_type, weights_name
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.listing: list[tuple[int, Path | None]] = []

    def clear(self) -> None:
        """Let the weights go (an older run of the session keeps its log, not its checkpoints)."""
        self.states.clear()
        self.listing.clear()

    @property
    def steps(self) -> list[int]:
        return sorted(self.states)

    def state(self, step: int) -> dict[str, torch.Tensor]:
        return self.states[step]

    def take(self, step: int, module: torch.nn.Module) -> None:
        """Keep a copy of `module`'s weights as those of `step` (step 0, untrained, is not kept)."""
        if step <= 0 or step in self.states:
            return
        self.states[step] = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
        while len(self.states) > self.keep:
            older = self.steps[:-1]
            for dropped in older[1::2]:
                del self.states[dropped]
        self.listing[:] = [(s, None) for s in self.steps]

    def offer(self, step: int, module: torch.nn.Module) -> None:
        """Keep `module` if the newest copy is at least `every` steps old (called from a training callback)."""
        if step - (self.steps[-1] if self.states else 0) >= self.every:
            self.take(step, module)

    def train(self, trainer: Any, steps: int, callback: Any = None, every: int = 10) -> None:
        """`trainer.train(steps, callback, every)` (a DiffusionTrainer), keeping copies along the way and where
        it ends: finished, or stopped between two steps (Streamlit's Stop raises in the callback)."""

        def on_step(tr: Any) -> None:
            self.offer(tr.step, tr.sampling_model)
            if callback is not None:
                callback(tr)

        try:
            trainer.train(steps, on_step, every)
        finally:
            self.take(trainer.step, trainer.sampling_model)


def run_archive(run: Run) -> bytes:
    """A run as a zip of its run folder: config.json, metrics.jsonl and, for a page training, its checkpoints
    (float32) as checkpoints/step_N/ folders; unzipped into a runs folder, the Training logs page reads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{run.name}/config.json", _json(run.config))
        archive.writestr(f"{run.name}/metrics.jsonl", "".join(json.dumps(r, default=float) + "\n" for r in run.metrics))
        kept = run.snapshots
        for step in kept.steps if kept is not None else []:
            files = checkpoint_files(kept.state(step), kept.weights_name, kept.config, kept.schedule,
                                     kept.prediction_type, dtype=torch.float32, step=step, run=run.name)  # fmt: skip
            folder = checkpoint_folder(Path(run.name), step).as_posix()
            for name, data in files.items():
                archive.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
