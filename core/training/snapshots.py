"""A page training's checkpoints, kept in memory: a visitor's training writes nothing to the server's disk, and
takes its checkpoints home as a zip of the run folder (core/runs/archive.py). `WeightSnapshots` satisfies the run
record's `Snapshots` protocol (core/runs/record.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError
from core.runs.checkpoints import checkpoint_files
from core.training.posthoc_ema import Fit, PowerStreams, coefficients, combine, gamma_of, snapshot_file


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
        # post-hoc EMA's streams at each kept step, where the trainer keeps them: {step: [(sigma_rel, state), ...]}
        self.streams: dict[int, list[tuple[float, dict[str, torch.Tensor]]]] = {}

    def clear(self) -> None:
        """Let the weights go (an older run of the session keeps its log, not its checkpoints)."""
        self.states.clear()
        self.streams.clear()
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
            extra_files=dict(snapshot_file(state, r, step) for r, state in self.streams.get(step, [])),
            step=step,
            run=run,
        )

    def take(self, step: int, module: torch.nn.Module, streams: PowerStreams | None = None) -> None:
        """Keep a copy of `module`'s weights as those of `step` (step 0, untrained, is not kept), and of post-hoc
        EMA's `streams` there (as `module`'s state dicts: it is built like the module they follow)."""
        if step <= 0 or step in self.states:
            return
        self.states[step] = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
        if streams is not None:
            self.streams[step] = [
                (length, {k: v.to("cpu") for k, v in streams.state_of(i, module).items()})
                for i, length in enumerate(streams.sigma_rels)
            ]
        while len(self.states) > self.keep:
            older = self.steps[:-1]
            for dropped in older[1::2]:
                del self.states[dropped]
                self.streams.pop(dropped, None)
        self.listing[:] = [(s, None) for s in self.steps]

    def offer(self, step: int, module: torch.nn.Module, streams: PowerStreams | None = None) -> None:
        """Keep `module` (and `streams`) if the newest copy is at least `every` steps old (from a training
        callback)."""
        if step - (self.steps[-1] if self.states else 0) >= self.every:
            self.take(step, module, streams)

    def posthoc_state(self, step: int, sigma_rel: float) -> tuple[dict[str, torch.Tensor], Fit]:
        """The weights of the post-hoc EMA of length `sigma_rel` at kept step `step`, rebuilt from the streams
        kept up to it (core/training/posthoc_ema.py), and how closely its profile was fitted."""
        kept = [(s, gamma_of(r), state) for s in self.steps if s <= step for r, state in self.streams.get(s, [])]
        if step not in self.states or not kept:
            raise BadInputError(f"This run kept no post-hoc EMA snapshots up to step {step:,}.")
        fit = coefficients([(s, gamma) for s, gamma, _ in kept], step, sigma_rel)
        return combine([state for _, _, state in kept], fit.coefficients), fit

    def train(self, trainer: Any, steps: int, callback: Any = None, every: int = 10) -> None:
        """`trainer.train(steps, callback, every)` (a DiffusionTrainer), keeping copies along the way and where
        it ends: finished, or stopped between two steps (Streamlit's Stop raises in the callback)."""

        def on_step(tr: Any) -> None:
            self.offer(tr.step, tr.sampling_model, tr.posthoc)
            if callback is not None:
                callback(tr)

        try:
            trainer.train(steps, on_step, every)
        finally:
            self.take(trainer.step, trainer.sampling_model, trainer.posthoc)
