"""One Brownian path W(sigma) that drives the fresh noise of stochastic samplers, whatever their step grid.

A stochastic sampler draws one standard normal z per step sigma -> sigma'. Drawn from a generator, a run with
20 steps and a run with 1,000 steps see unrelated noise, so their results cannot be compared sample by sample.
Drawn from one path instead, z = (W(sigma) - W(sigma')) / sqrt(sigma - sigma') (still N(0, I) for every step),
every run follows the same realisation of the reverse SDE, and the distance between a coarse run and a
fine one from the same start is the sampler's strong (pathwise) error. This is k-diffusion's Brownian-tree
noise sampler in spirit (Kidger et al. 2021, "Efficient and accurate gradients for neural SDEs", the
Brownian interval), here with a plain sorted list: a value between two known ones is drawn from the Brownian
bridge between them, a value beyond the last from a free increment, and every value drawn is kept, so each
query sees the same path.
"""

from __future__ import annotations

import bisect
import math

import torch

from core.errors import BadInputError


class BrownianNoise:
    """A noise source for `core.diffusion.samplers` (pass it as `generator`): one path W(sigma), W(0) = 0,
    of shape `shape` (the batch being sampled), values in `dtype` on the CPU."""

    def __init__(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = torch.float64) -> None:
        self.shape, self.generator, self.dtype = tuple(shape), generator, dtype
        self._times: list[float] = [0.0]
        self._values: list[torch.Tensor] = [torch.zeros(self.shape, dtype=dtype)]
        self._block: list[torch.Tensor] = []

    def _draw(self) -> torch.Tensor:
        if not self._block:  # 64 draws at a time, in float32 (4x faster to draw; the path is kept in self.dtype)
            block = torch.randn((64, *self.shape), generator=self.generator, dtype=torch.float32).to(self.dtype)
            self._block = list(block.unbind(0))
            self._block.reverse()
        return self._block.pop()

    def at(self, t: float) -> torch.Tensor:
        """W(t) for t >= 0."""
        if not t >= 0:
            raise BadInputError(f"A Brownian path is defined for sigma >= 0 (asked at {t}).")
        i = bisect.bisect_left(self._times, t)
        if i < len(self._times) and self._times[i] == t:
            return self._values[i]
        t0, w0 = self._times[i - 1], self._values[i - 1]
        if i == len(self._times):  # past the last known time: an independent increment
            w = w0 + math.sqrt(t - t0) * self._draw()
        else:  # between two known times: the Brownian bridge, mean on the chord, variance (t-t0)(t1-t)/(t1-t0)
            t1, w1 = self._times[i], self._values[i]
            a = (t - t0) / (t1 - t0)
            w = w0 + a * (w1 - w0) + math.sqrt(a * (t1 - t)) * self._draw()
        self._times.insert(i, t)
        self._values.insert(i, w)
        return w

    def __call__(self, x: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
        """The standard normal noise of the step sigma -> sigma_next, shaped like x."""
        if tuple(x.shape) != self.shape:
            raise BadInputError(f"This Brownian path is for a batch of shape {self.shape}, not {tuple(x.shape)}.")
        lo, hi = sorted((float(sigma), float(sigma_next)))
        if hi == lo:
            raise BadInputError("A step's two noise levels must differ.")
        return ((self.at(hi) - self.at(lo)) / math.sqrt(hi - lo)).to(x.device, x.dtype)
