"""Learning-rate schedules: one description for every training loop of the project.

`LRSchedule(peak=..., shape=...)` gives the learning rate of each optimisation step (0-based) over a cycle of
`length` steps starting at step `start`:

- "constant": the peak, after a linear warm-up from 0 over the run's first `warmup_steps` steps.
- "cosine": the same warm-up, then half a cosine from the peak down to peak * min_ratio over the cycle
  (Loshchilov & Hutter 2017, SGDR; a cycle per `train` call gives warm restarts).
- "one_cycle": Smith & Topin 2019, "Super-convergence", with the numbers torch's OneCycleLR uses by default:
  a cosine rise from peak / 25 to the peak over the first 30% of the cycle, then a cosine fall to
  peak / 25e4; Adam's beta1 moves the opposite way, from 0.95 down to 0.85 and back up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.errors import BadInputError

SHAPES = ("constant", "cosine", "one_cycle")
ONE_CYCLE_RISE = 0.3  # share of the cycle spent rising
ONE_CYCLE_DIV, ONE_CYCLE_FINAL_DIV = 25.0, 1e4  # start at peak / 25; end at peak / 25 / 1e4
ONE_CYCLE_BETA1 = (0.95, 0.85)  # beta1 at the ends of the cycle, and at the peak


def _cosine_between(start: float, end: float, u: float) -> float:
    """From `start` at u = 0 to `end` at u = 1 along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * u) + 1)


def _one_cycle(k: int, length: int, first: float, middle: float, last: float) -> float:
    """Step k of a one-cycle schedule: `first` -> `middle` over the rise, then `middle` -> `last`."""
    rise_end = ONE_CYCLE_RISE * length - 1  # torch's phase boundary, in steps from the cycle's start
    if k <= rise_end:
        return _cosine_between(first, middle, k / rise_end if rise_end > 0 else 1.0)
    return _cosine_between(middle, last, (k - rise_end) / (length - 1 - rise_end))


@dataclass(frozen=True, kw_only=True)
class LRSchedule:
    peak: float
    shape: str = "constant"
    warmup_steps: int = 0  # constant and cosine: linear warm-up from 0 at the start of the run
    min_ratio: float = 0.0  # cosine: where the cycle ends, as a share of the peak

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise BadInputError(f"Unknown learning-rate schedule {self.shape!r}; use {', '.join(SHAPES)}.")

    def lr(self, step: int, start: int = 0, length: int = 0) -> float:
        """The learning rate of `step`, in a cycle of `length` steps from `start`."""
        if self.shape == "one_cycle":
            low = self.peak / ONE_CYCLE_DIV
            return _one_cycle(step - start, length, low, self.peak, low / ONE_CYCLE_FINAL_DIV)
        lr = self.peak * min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else self.peak
        if self.shape == "cosine" and length > 1:
            u = min(max((step - start) / (length - 1), 0.0), 1.0)
            lr *= self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * u))
        return lr

    def beta1(self, step: int, start: int = 0, length: int = 0) -> float | None:
        """Adam's beta1 for `step` where the shape cycles it (one_cycle), else None (leave it as it is)."""
        if self.shape != "one_cycle":
            return None
        high, low = ONE_CYCLE_BETA1
        return _one_cycle(step - start, length, high, low, high)

    def apply(self, optimizer: torch.optim.Optimizer, step: int, start: int = 0, length: int = 0) -> float:
        """Set `optimizer`'s learning rate (and beta1) for `step`; returns the learning rate."""
        lr, beta1 = self.lr(step, start, length), self.beta1(step, start, length)
        for group in optimizer.param_groups:
            group["lr"] = lr
            if beta1 is not None:
                group["betas"] = (beta1, *group["betas"][1:])
        return lr
