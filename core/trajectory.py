"""Recording what a sampler does, step by step, for display and export.

A `TrajectoryRecorder` is a sampler callback. It keeps, every `every` steps (and always the last), the
state x_t, the predicted x_0 and the predicted noise of the first `keep` samples, plus two numbers per
step for every step: the planned noise level sigma and the noise the model sees in x, std(x - D(x)).
For a well-calibrated model the two agree; where they part, the model mistakes noise for signal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from core.samplers import Step


@dataclass(frozen=True)
class Frame:
    index: int
    sigma: float
    x: torch.Tensor  # [keep, ...] state at sigma, VE coordinates
    denoised: torch.Tensor  # predicted x_0
    eps: torch.Tensor  # predicted noise

    @property
    def x_vp(self) -> torch.Tensor:
        """The state in the model's own (VP) scale, x / sqrt(1 + sigma^2): what a DDPM sees."""
        return self.x / (1 + self.sigma**2) ** 0.5


@dataclass
class TrajectoryRecorder:
    """Sampler callback that records frames and per-step noise statistics; see the module docstring."""

    total_steps: int
    every: int = 1
    keep: int = 16
    on_frame: Callable[[Frame], None] | None = None
    frames: list[Frame] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    seen_noise: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, step: Step) -> None:
        self.sigmas.append(step.sigma)
        self.seen_noise.append(float((step.x - step.denoised).float().std()))
        if step.index % self.every == 0 or step.index == self.total_steps - 1:
            k = min(self.keep, len(step.x))
            frame = Frame(step.index, step.sigma, step.x[:k].clone(), step.denoised[:k].clone(), step.eps[:k].clone())
            self.frames.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame)

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


class Throttle:
    """Calls `render(frame)` at most every `min_interval` seconds, and always for the last step, so a live
    view costs a bounded share of a run however fast its steps are."""

    def __init__(self, render: Callable[[Frame], None], total_steps: int, min_interval: float = 0.15) -> None:
        self.render, self.total_steps, self.min_interval = render, total_steps, min_interval
        self.last = float("-inf")

    def __call__(self, frame: Frame) -> None:
        now = time.perf_counter()
        if now - self.last < self.min_interval and frame.index != self.total_steps - 1:
            return
        self.last = now
        self.render(frame)
