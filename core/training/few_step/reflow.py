"""Reflow for a few steps (Liu, Gong & Liu 2023, "Flow straight and fast"): flow matching on a teacher's
(noise, sample) pairs, with part of its times where a few-step sampler calls the network, at the points that
sampler reaches.

A deterministic teacher couples each noise eps with the sample its probability-flow ODE ends at, x_0. On such a
pair x_t = (1 - t) x_0 + t eps is a straight line from the sample to its own noise, and the velocity target
eps - x_0 is the same all along it: a network that fits it well lands on x_0 from eps in any number of Euler steps
(reflow straightens the flow). Rectified flow's one-step distillation trains at t = 1 alone, the jump from noise
to data. This trainer draws each time of a batch, with probability `grid_share`, from the times an Euler sampler of
`grid_nfe` steps calls the network (every call alike: for NFE 1 and 2 that is t = 1 twice as often as t = 1/2),
the rest uniform on (0, 1), so the steps the student is sampled with get most of the training while the rest of
the path stays fitted. The grid's times are the flow schedule's trailing grid (t = 1 stands at the schedule's cap,
where its samplers start).

With `own_path` (the default), a grid time after a sampler's first step is trained where that sampler gets to: the
student's own Euler steps from the noise (without gradient, the current weights), x_j, not the pair's line. Its
target is the straight line from there to the pair's sample, v = (x_j - x_0) / t_j, which is the line's velocity
eps - x_0 where x_j is on the line. The steps after the first then learn to correct the first step's own error
instead of assuming it away. On MNIST (mnist-flow-pd-reflow's recipe, with and without it, 1,000 samples) FD-LeNet
at two steps fell from 52.3 to 45.7 and at four from 46.7 to 40.5, one step staying at 61-62.

The batches carry the pairs (core/training/diffusion.paired_batches). The toy lab's reflow row is
core/labs/objectives.reflow (uniform times, a fresh network); this trainer is the image models'
(`python -m zoo train`, kind "distill", method "reflow"), usually starting from a distilled student.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.diffusion.flow import t_of_sigma
from core.errors import BadInputError
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import (
    MAX_NFE,
    FewStepTrainer,
    column,
    euler_sample,
    flow_schedule,
    net_velocity,
    on_path,
)


def grid_times(nfe: int) -> torch.Tensor:
    """The times [nfe] (float64, decreasing) at which Euler in `nfe` steps calls the network: the flow schedule's
    trailing grid without its final 0."""
    if not 1 <= nfe <= MAX_NFE:
        raise BadInputError(f"Reflow's grid step counts must lie in 1-{MAX_NFE}.")
    return t_of_sigma(flow_schedule().capped_sigmas(nfe, "trailing")[:-1])


class Reflow(FewStepTrainer):
    """Flow matching on paired batches (noise under cond["noise"]) at times weighted to a few-step grid, those after
    a grid's first step at the sampler's own points; see the module docstring. The model may start anywhere: a
    fresh network, its teacher, a distilled student."""

    method = "reflow"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        grid_nfe: Sequence[int] = (1, 2),
        grid_share: float = 0.6,
        own_path: bool = True,
    ) -> None:
        if not 0 <= grid_share <= 1:
            raise BadInputError("The share of times on the grid must lie in [0, 1].")
        if not grid_nfe:
            raise BadInputError("Name the step counts of the grid reflow trains for.")
        super().__init__(model, config, batches)
        self.grids = [grid_times(int(k)) for k in grid_nfe]
        self.calls = [(g, j) for g, grid in enumerate(self.grids) for j in range(len(grid))]  # every network call
        self.visits = torch.cat(self.grids)  # the time of each call, in the same order
        self.grid_share = grid_share
        self.own_path = own_path

    def times(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n training times (float32): with probability grid_share a grid call's time, else uniform on (0, 1); and
        for each, which call of `self.calls` it is (-1: off the grid)."""
        on_grid = self.uniform(n) < self.grid_share
        call = torch.randint(len(self.visits), (n,), generator=self.generator)
        t = torch.where(on_grid, self.visits[call].float(), self.uniform(n).clamp(1e-5, 1 - 1e-5))
        return t, torch.where(on_grid, call, -1)

    def path_point(self, eps: torch.Tensor, grid: torch.Tensor, j: int) -> torch.Tensor:
        """Where Euler on the grid's times, with the current weights, is after j steps from the noise eps."""
        x = float(grid[0]) * eps  # the sampler's start: noise at its capped top, no data in it
        with torch.no_grad():
            for t, t_next in zip(grid[:j].tolist(), grid[1 : j + 1].tolist(), strict=True):
                x = x + (t_next - t) * net_velocity(self._net, x, torch.full((len(x),), t, dtype=x.dtype))
        return x

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        if "noise" not in cond:
            raise BadInputError("Reflow trains on (noise, sample) pairs: batches of paired_batches.")
        eps, _ = self.noise_for(x0, cond)
        t, call = self.times(len(x0))
        t = t.to(x0.device)
        x, target = on_path(x0, eps, t), eps - x0  # on the pair's line
        if self.own_path:
            for c in call.unique().tolist():
                if c < 0 or self.calls[c][1] == 0:
                    continue  # off the grid, or a first step: its start is the line's (up to the cap's 1e-3)
                (g, j), rows = self.calls[c], (call == c).to(x0.device)
                x[rows] = self.path_point(eps[rows], self.grids[g], j)
                target[rows] = (x[rows] - x0[rows]) / column(t[rows], x0)
        return torch.mean((net_velocity(self._net, x, t) - target) ** 2)

    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        net = self.sampling_model
        with torch.inference_mode():
            return euler_sample(lambda x, t: net_velocity(net, x, t), noise, nfe)
