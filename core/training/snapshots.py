"""A page training's checkpoints, kept in memory: a visitor's training writes nothing to the server's disk, and
takes its checkpoints home as a zip of the run folder (core/runs/archive.py). `WeightSnapshots` satisfies the run
record's `Snapshots` protocol (core/runs/record.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.diffusion.schedules import NoiseSchedule
from core.runs.checkpoints import checkpoint_files


class WeightSnapshots:
    """A page training's checkpoints, kept in memory (a visitor's training writes nothing to the server's disk):
    a copy of the sampling weights (EMA where there is EMA) at least `every` steps apart, and wherever training
    ends or is stopped. Past `keep` copies every other one is dropped, so they keep spanning the whole run at a
    bounded cost; the newest is always kept.

    `listing` is the run record's view, [(step, None)] in step order (Run.checkpoints: None = in memory).
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

    def files(self, step: int, run: str) -> dict[str, bytes]:
        """The files of a checkpoint folder holding the weights of `step` (float32), for the run called `run`."""
        return checkpoint_files(
            self.states[step],
            self.weights_name,
            self.config,
            self.schedule,
            self.prediction_type,
            dtype=torch.float32,
            step=step,
            run=run,
        )

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
