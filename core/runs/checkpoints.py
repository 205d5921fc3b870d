"""Weights a network can be rebuilt from, written as diffusers writes them, so every checkpoint folder loads on
its own (here, in diffusers, or on the Hub):

    config.json              the network's settings (a UNet2DModel's as diffusers names them)
    <weights>.safetensors    the tensors, fp16 by default (upcast to float32 on load)
    scheduler_config.json    the noise schedule and prediction target, as a DDPMScheduler config (exact betas)
    atlas.json               what diffusers has no field for: step, data set, classes, which weights (EMA or raw)
    phema-<r>.safetensors    post-hoc EMA's snapshots, one per stream (float32; core/training/posthoc_ema.py)

A page's training keeps its checkpoints in memory (core/training/snapshots.py) and a visitor takes them home as
a zip of the same run folder (core/runs/archive.py): nothing a visitor trains is written to the server's disk.
Nothing here is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes

from core.diffusion.schedules import DIFFUSERS_NAMES, NoiseSchedule

ATLAS_FILE = "atlas.json"


def as_json(data: Mapping[str, Any]) -> bytes:
    """A JSON file's bytes, as every file of a run folder is written (indented, one line at the end)."""
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
    (folder / "config.json").write_bytes(as_json(config))
    return folder / filename


def scheduler_config(schedule: NoiseSchedule, prediction_type: str) -> dict[str, Any]:
    """The schedule as diffusers reads it: for the flow path, FlowMatchEulerDiscreteScheduler's settings (T and
    the shift; its model predicts the velocity); otherwise DDPMScheduler's with the exact betas (every kind, ours
    too) and the diffusers name of the kind where diffusers has one (for people reading the file)."""
    if schedule.path == "flow":
        return {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "num_train_timesteps": schedule.num_steps,
            "shift": schedule.shift,
        }
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
    extra_files: Mapping[str, bytes] | None = None,
    **atlas: Any,
) -> dict[str, bytes]:
    """One checkpoint folder's files by name (see the module docstring); `atlas` goes to atlas.json;
    `extra_files` are written beside them (post-hoc EMA's snapshots, core/training/posthoc_ema.py)."""
    return {
        weights_name: safetensors_bytes(_state(weights, dtype)),
        "config.json": as_json(config),
        "scheduler_config.json": as_json(scheduler_config(schedule, prediction_type)),
        ATLAS_FILE: as_json(atlas),
        **(extra_files or {}),
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
