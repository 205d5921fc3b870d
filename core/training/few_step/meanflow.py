"""MeanFlow (Geng, Deng, Bai, Kolter & He 2025, "Mean flows for one-step generative modeling") on the flow path.

The average velocity over [r, t] of the flow's ODE, u(z_t, r, t) = 1 / (t - r) * integral_r^t v(z_tau, tau) dtau,
so that z_r = z_t - (t - r) u(z_t, r, t), satisfies the MeanFlow identity (differentiate (t - r) u in t):
    u(z_t, r, t) = v(z_t, t) - (t - r) d/dt u(z_t, r, t),   d/dt u = v . grad_z u + partial_t u,
the total derivative along the trajectory. The network u_theta(z, r, t) takes t and the span t - r
(core/models/mlp.py's second time input) and regresses on the stop-gradient target
    u_tgt = v - (t - r) sg[JVP of u_theta along (dz, dr, dt) = (v, 0, 1)],
with v = eps - x_0 the conditional velocity of z_t = (1 - t) x_0 + t eps, the JVP computed with
torch.func.jvp in the same forward pass as u_theta itself. A share of the rows (1 - `mean_share`, 75% in the
paper) has r = t, where the target is v: plain flow matching. (t, r) are two draws of the config's time density
(uniform, or logit-normal), sorted so that r <= t. The loss may be weighted adaptively per row,
w = sg[1 / (|u - u_tgt|^2 + c)^p] (the paper's p = 1; p = 0 is the plain squared error).
Sampling: one step x_0 = eps - u(eps, 0, 1); k steps z_r = z_t - (t - r) u(z_t, r, t) on the even grid.

The JVP differentiates the network in t, so its times are fed slowly (`time_input`): each embedding then turns
at most about a radian per unit of t. Fed TIME_SCALE t like the other flow models, the DDPM embedding turns up to
1000 radians per unit of t, d/dt u was large from the first updates and the self-referential target diverged
(moons, MLP 64 x 2, lr 1e-2: loss 1e5 by step 60; Fourier features likewise). The sinusoidal and Fourier
embeddings are fed t itself (u = t / 1000 in their units), the raw one T t (u = t; fed t, it barely sees time:
SW2 0.45 against 0.08 at NFE 1). The adaptive weight is off by default (p = 0): on two moons p = 1 reached a worse
SW2 at NFE 1 (0.18 against 0.08) and makes the logged loss about 1 whatever the fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from core.errors import BadInputError
from core.models.mlp import MLPConfig, build_mlp
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import FewStepTrainer, average_velocity_sample, column, net_velocity, on_path

# u(z [B, D], r [B], t [B]) -> [B, D]
Average = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def meanflow_target(
    u: Average, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(z, r, t), its target v - (t - r) du/dt) with du/dt the JVP along (v, 0, 1), the target detached."""
    out, du_dt = torch.func.jvp(u, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    return out, (v - column(t - r, z) * du_dt).detach()


def time_input(model: nn.Module) -> float:
    """What MeanFlow multiplies its times by before the network sees them (see the module docstring): t itself
    in units of the embedding's T / 1000 (sinusoidal, Fourier), T t for the raw embedding."""
    config = getattr(model, "config", None)
    if not isinstance(config, MLPConfig):
        return 1.0
    return float(config.num_steps) if config.time_embedding == "raw" else config.num_steps / 1000


class MeanFlow(FewStepTrainer):
    """MeanFlow; see the module docstring. The network needs a span input (MLPConfig.span_embedding)."""

    method = "meanflow"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        mean_share: float = 0.25,
        adaptive_p: float = 0.0,
        adaptive_c: float = 1e-3,
    ) -> None:
        if not (0 <= mean_share <= 1 and 0 <= adaptive_p <= 2 and adaptive_c > 0):
            raise BadInputError("MeanFlow's share of r < t must lie in [0, 1], p in [0, 2] and c above 0.")
        super().__init__(model, config, batches)
        self.mean_share, self.adaptive_p, self.adaptive_c = mean_share, adaptive_p, adaptive_c
        self.time_input = time_input(model)

    @classmethod
    def create(cls, *, net: MLPConfig, config: TrainConfig, batches: BatchFn, **options) -> MeanFlow:
        return cls(build_mlp(replace(net, span_embedding=net.time_embedding), config.seed), config, batches, **options)

    def times(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, t) [n] each, r <= t, r = t on a share 1 - mean_share of the rows."""
        if self.config.time_density == "logit_normal":
            pair = torch.sigmoid(torch.randn(2, n, generator=self.generator))
        else:
            pair = torch.rand(2, n, generator=self.generator)
        r, t = pair.min(0).values, pair.max(0).values
        same = self.uniform(n) >= self.mean_share
        return torch.where(same, t, r), t

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        eps, _ = self.noise_for(x0, cond)
        r, t = (s.to(x0.device, x0.dtype) for s in self.times(len(x0)))
        z, v = on_path(x0, eps, t), eps - x0
        pred, target = meanflow_target(
            lambda zz, rr, tt: net_velocity(self._net, zz, tt, tt - rr, self.time_input), z, r, t, v
        )
        err = (pred - target).pow(2).reshape(len(z), -1).mean(-1)
        if self.adaptive_p:
            err = err / (err.detach() * z[0].numel() + self.adaptive_c) ** self.adaptive_p
        return err.mean()

    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        net = self.sampling_model
        with torch.inference_mode():
            return average_velocity_sample(lambda x, t, d: net_velocity(net, x, t, d, self.time_input), noise, nfe)
