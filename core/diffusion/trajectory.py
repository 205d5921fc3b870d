"""Recording what a sampler does, step by step, for display and export. Both recorders are sampler callbacks.

States are shown in the model's own (VP) scale, y = x / sqrt(1 + sigma^2) (`vp_state`): the sampler's VE
state x = x_0 + sigma eps divided by 1/sqrt(ab), so a run starts as unit-scale noise and ends on the data.

- `TrajectoryRecorder` (images): every `every` steps (and always the last) the state, the predicted x_0 and
  the predicted noise of the first `keep` samples, plus two numbers for every step: the planned noise level
  sigma and the noise the model sees in x, std(x - D(x)). For a well-calibrated model the two agree; where
  they part, the model mistakes noise for signal.
- `PathRecorder` (points): the VP state and x_0 estimate of the first `points` samples at chosen steps, so
  their paths from noise to data can be drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import torch

from core.diffusion.samplers import Step


def vp_state(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The VE state x at noise level sigma in VP coordinates: x / sqrt(1 + sigma^2) = sqrt(ab) x."""
    return x / (1 + sigma**2) ** 0.5


@dataclass(frozen=True)
class Frame:
    index: int
    sigma: float
    x: torch.Tensor  # [keep, ...] state at sigma, VE coordinates
    denoised: torch.Tensor  # predicted x_0
    eps: torch.Tensor  # predicted noise

    @property
    def x_vp(self) -> torch.Tensor:
        """The state in the model's own (VP) scale: what a DDPM sees."""
        return vp_state(self.x, self.sigma)


@dataclass
class TrajectoryRecorder:
    """Sampler callback that records frames and per-step noise statistics; see the module docstring."""

    total_steps: int
    every: int = 1
    keep: int = 16
    on_frame: Callable[[Frame], None] | None = None
    on_step: Callable[[int], None] | None = None  # sees every step's index (progress, a stop check)
    frames: list[Frame] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    seen_noise: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, step: Step) -> None:
        self.sigmas.append(step.sigma)
        self.seen_noise.append(float((step.x - step.denoised).float().std()))
        if step.index % self.every == 0 or step.index == self.total_steps - 1:
            k = min(self.keep, len(step.x))
            frame = Frame(
                index=step.index,
                sigma=step.sigma,
                x=step.x[:k].clone(),
                denoised=step.denoised[:k].clone(),
                eps=step.eps[:k].clone(),
            )
            self.frames.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
        if self.on_step is not None:
            self.on_step(step.index)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def remaining_noise(self, final: torch.Tensor) -> list[tuple[int, float]]:
        """For each frame, the RMS distance between its state and the finished sample: the noise still left."""
        k = min(self.keep, len(final))
        return [(f.index, float((f.x - final[:k]).float().pow(2).mean().sqrt())) for f in self.frames]


def display_every(steps: int, target_frames: int = 25) -> int:
    """Record about `target_frames` frames whatever the step count (1 for short runs)."""
    return max(1, -(-steps // target_frames))


@dataclass
class PathRecorder:
    """Sampler callback keeping the paths of the first `points` samples (all when None) at the step indices in
    `steps` (every step when None); `on_step(self)` runs after each kept step, for live drawing.

    `finish(final)` appends the finished samples as the last frame (sigma 0); `path()` and `estimates()` then
    stack the frames: [F, points, ...] VP states y and x_0 estimates."""

    points: int | None = None
    steps: Collection[int] | None = None
    on_step: Callable[[PathRecorder], None] | None = None
    states: list[torch.Tensor] = field(default_factory=list)
    denoised: list[torch.Tensor] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    finished: bool = False  # set by `finish`, so that `on_step` can tell the last frame

    def __call__(self, step: Step) -> None:
        if self.steps is not None and step.index not in self.steps:
            return
        self.states.append(vp_state(step.x[: self.points], step.sigma))
        self.denoised.append(step.denoised[: self.points].clone())
        self.sigmas.append(step.sigma)
        if self.on_step is not None:
            self.on_step(self)

    def finish(self, final: torch.Tensor) -> None:
        self.states.append(final[: self.points])
        self.denoised.append(final[: self.points])
        self.sigmas.append(0.0)
        self.finished = True
        if self.on_step is not None:
            self.on_step(self)

    def path(self) -> torch.Tensor:
        return torch.stack(self.states)

    def estimates(self) -> torch.Tensor:
        return torch.stack(self.denoised)
