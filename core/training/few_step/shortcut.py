"""Shortcut models (Frans, Hafner, Levine & Abbeel 2024, "One step diffusion via shortcut models") on the flow
path.

One network s_theta(x_t, t, d) conditioned on the step size d (core/models/mlp.py's span input) gives the average
velocity over [t - d, t], so that x_{t - d} = x_t - d s(x_t, t, d); d = 0 is the instantaneous velocity, learnt by
flow matching. A share of each batch (`consistency_share`, 1/4 in the paper) learns the bigger steps from the
smaller ones, by the self-consistency of two half steps:
    s(x_t, t, 2d) <- sg[(s(x_t, t, d) + s(x'_{t-d}, t - d, d)) / 2],  x'_{t-d} = x_t - d s(x_t, t, d),
with 2d drawn uniformly from {1, 1/2, ..., 2^-(levels-1)} (1 .. 1/128 by default) and t uniformly from the
multiples of d in [2d, 1]; the smallest level's half steps take d = 0 (two Euler steps of the flow velocity).
The rest of the batch is the diffusion trainer's own flow-matching loss with d = 0. Sampling in k steps: d = 1/k.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from core.errors import BadInputError
from core.models.mlp import MLPConfig, build_mlp
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import (
    FewStepTrainer,
    SpanField,
    average_velocity_sample,
    column,
    net_velocity,
    on_path,
    split_rows,
)


def shortcut_target(
    s: SpanField, x: torch.Tensor, t: torch.Tensor, half: torch.Tensor, half_span: torch.Tensor
) -> torch.Tensor:
    """The self-consistency target for a step of 2 half: two steps of `half` [B] by s(x, t, half_span), averaged:
    (s(x, t, d) + s(x - half s(x, t, d), t - half, d)) / 2 with d = half_span [B]."""
    first = s(x, t, half_span)
    second = s(x - column(half, x) * first, t - half, half_span)
    return (first + second) / 2


class Shortcut(FewStepTrainer):
    """Shortcut models; see the module docstring. The network needs a span input (MLPConfig.span_embedding)."""

    method = "shortcut"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        consistency_share: float = 0.25,
        levels: int = 8,
    ) -> None:
        if not (0 <= consistency_share <= 1 and 1 <= levels <= 16):
            raise BadInputError("The self-consistency share must lie in [0, 1] and the levels in 1-16.")
        super().__init__(model, config, batches)
        self.consistency_share, self.levels = consistency_share, levels

    @classmethod
    def create(cls, *, net: MLPConfig, config: TrainConfig, batches: BatchFn, **options) -> Shortcut:
        return cls(build_mlp(replace(net, span_embedding=net.time_embedding), config.seed), config, batches, **options)

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        n = len(x0)
        k = round(self.consistency_share * n)
        parts = []
        if k < n:  # flow matching at d = 0: the diffusion trainer's own loss, with a zero span
            fm = split_rows(cond, slice(k, None))
            fm["span"] = torch.zeros(n - k, device=x0.device)
            parts.append((n - k, self.flow_loss(x0[k:], fm)))
        if k > 0:
            parts.append((k, self.consistency_loss(x0[:k], split_rows(cond, slice(None, k)))))
        return sum(rows * part for rows, part in parts) / n

    def consistency_loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of s(x_t, t, 2d) against `shortcut_target` at random levels and grid times."""
        eps, _ = self.noise_for(x0, cond)
        n = len(x0)
        level = torch.randint(self.levels, (n,), generator=self.generator)  # 2d = 2^-level
        sections = 2.0 ** (level + 1)  # 1 / d
        t = (torch.floor(self.uniform(n) * (sections - 1)) + 2) / sections  # d * {2, ..., 1 / d}
        half = 1 / sections
        half_span = torch.where(level == self.levels - 1, torch.zeros_like(half), half)
        t, half, half_span = (v.to(x0.device, x0.dtype) for v in (t, half, half_span))
        x_t = on_path(x0, eps, t)
        with torch.no_grad():
            target = shortcut_target(lambda x, tt, d: net_velocity(self.model, x, tt, d), x_t, t, half, half_span)
        return torch.mean((net_velocity(self._net, x_t, t, 2 * half) - target) ** 2)

    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        net = self.sampling_model
        with torch.inference_mode():
            return average_velocity_sample(lambda x, t, d: net_velocity(net, x, t, d), noise, nfe)
