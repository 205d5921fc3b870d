"""Weights a network can be rebuilt from, written as diffusers writes them, so every checkpoint folder loads on
its own (here, in diffusers, or on the Hub):

    config.json              the network's settings (a UNet2DModel's as diffusers names them)
    <weights>.safetensors    the tensors, fp16 by default (upcast to float32 on load)
    scheduler_config.json    the noise schedule and prediction target, as a DDPMScheduler config (exact betas)
    atlas.json               what diffusers has no field for: step, data set, classes, which weights (EMA or raw)

Nothing here is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from core.diffusion.schedules import DIFFUSERS_NAMES, NoiseSchedule

ATLAS_FILE = "atlas.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_weights(
    module: torch.nn.Module,
    folder: Path,
    filename: str,
    config: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """config.json + the module's weights as safetensors (fp16 halves the files; loaders upcast). Cloned and
    made contiguous first: the trainer's flat-buffer views share storage, which safetensors refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(folder / filename))
    _write_json(folder / "config.json", config)
    return folder / filename


def scheduler_config(schedule: NoiseSchedule, prediction_type: str) -> dict[str, Any]:
    """The schedule as diffusers' DDPMScheduler reads it: the exact betas (every kind, ours too), and the
    diffusers name of the kind where diffusers has one (for people reading the file)."""
    config: dict[str, Any] = {
        "_class_name": "DDPMScheduler",
        "num_train_timesteps": schedule.num_steps,
        "trained_betas": schedule.betas.tolist(),
        "prediction_type": prediction_type,
    }
    if schedule.name in DIFFUSERS_NAMES:
        config["beta_schedule"] = DIFFUSERS_NAMES[schedule.name]
    return config


def save_checkpoint(
    folder: Path,
    module: torch.nn.Module,
    weights_name: str,
    config: dict[str, Any],
    schedule: NoiseSchedule,
    prediction_type: str,
    **atlas: Any,
) -> Path:
    """One self-contained checkpoint folder (see the module docstring); `atlas` goes to atlas.json."""
    save_weights(module, folder, weights_name, config)
    _write_json(folder / "scheduler_config.json", scheduler_config(schedule, prediction_type))
    _write_json(folder / ATLAS_FILE, atlas)
    return folder


class Snapshots:
    """A page training's checkpoints, kept in memory (a visitor's training writes nothing to the server's disk):
    a copy of the sampling weights (EMA where there is EMA) at least `every` steps apart, and wherever training
    ends or is stopped. Past `keep` copies every other one is dropped, so they keep spanning the whole run at a
    bounded cost; the newest is always kept.

    `listing` is the run record's view, [(step, None)] in step order (runlog.Run.checkpoints: None = in memory).
    """

    def __init__(self, every: int = 250, keep: int = 16) -> None:
        self.every, self.keep = every, keep
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.listing: list[tuple[int, Path | None]] = []

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
