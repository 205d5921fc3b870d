"""What every few-step trainer shares: the diffusion trainer's loop with a method's own loss, and the pieces of
the flow path its losses and samplers are written in.

`FewStepTrainer` is a `DiffusionTrainer` (core/training/diffusion.py) whose `loss(x0, cond)` is the method's:
the loop, its optimiser step (core/training/step.optimizer_step, with the divergence guard), the learning-rate
schedule, the EMA copy (`sampling_model`), the flat parameter buffers, interruption between callbacks and the
metrics records (step, loss, lr, seconds, grad_norm) are that trainer's, unchanged. Its schedule is the flow path
(T = TIME_SCALE), so the network sees TIME_SCALE t, like every flow model of the project (`net_velocity`).
One process only: MeanFlow differentiates through the network with a forward-mode JVP, which DDP's wrapper
does not carry.

The path: x_t = (1 - t) x_0 + t eps (`on_path`), velocity dx_t/dt = eps - x_0; sampling runs from t = 1 (x = eps)
down to t = 0 on the uniform grid t_k = 1 - k / nfe (`sampling_times`), one network evaluation per step.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import nn

from core.diffusion.flow import TIME_SCALE
from core.diffusion.schedules import NoiseSchedule, make_schedule
from core.errors import BadInputError
from core.training import distributed
from core.training.diffusion import BatchFn, DiffusionTrainer, TrainConfig

NFE_LADDER = (1, 2, 4, 8)
MAX_NFE = 256

# field(x [B, D], t [B]) -> [B, D]; with a span: field(x, t, span [B]) -> [B, D]
Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SpanField = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@functools.cache
def flow_schedule() -> NoiseSchedule:
    return make_schedule("flow", TIME_SCALE)


def column(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Times [B] shaped to broadcast against `like` [B, ...]."""
    return t.to(like.dtype).reshape(-1, *(1,) * (like.ndim - 1))


def on_path(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t eps for times t [B]."""
    tb = column(t, x0)
    return (1 - tb) * x0 + tb * eps


def net_velocity(
    net: nn.Module, x: torch.Tensor, t: torch.Tensor, span: torch.Tensor | None = None, scale: float = TIME_SCALE
) -> torch.Tensor:
    """The network's output at x [B, D] and times t [B] in [0, 1], fed as scale t (TIME_SCALE t, as every flow
    model of the project), and a span, when given, as scale span (core/models/mlp.py's second time input)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(len(x))
    if span is None:
        return net(x, scale * t)
    span = torch.as_tensor(span, dtype=x.dtype, device=x.device).reshape(-1).expand(len(x))
    return net(x, scale * t, span=scale * span)


def sampling_times(nfe: int) -> list[float]:
    """t_0 = 1 > t_1 > ... > t_nfe = 0, evenly spaced."""
    if not 1 <= nfe <= MAX_NFE:
        raise BadInputError(f"Sample with 1 to {MAX_NFE} network evaluations.")
    return [1 - k / nfe for k in range(nfe + 1)]


def euler_sample(velocity: Field, noise: torch.Tensor, nfe: int) -> torch.Tensor:
    """Euler on dx/dt = v(x, t) from x_1 = noise to t = 0 in `nfe` even steps: x <- x + (t' - t) v(x, t)."""
    times, x = sampling_times(nfe), noise
    for t, t_next in itertools.pairwise(times):
        x = x + (t_next - t) * velocity(x, torch.full((len(x),), t, dtype=x.dtype))
    return x


def average_velocity_sample(average: SpanField, noise: torch.Tensor, nfe: int) -> torch.Tensor:
    """Steps by an average velocity over each step's span (shortcut models' s(x, t, d), MeanFlow's u(z, r, t) with
    span t - r): x_{t - d} = x_t - d u(x_t, t, d), d = 1 / nfe, from x_1 = noise."""
    times, x = sampling_times(nfe), noise
    for t, t_next in itertools.pairwise(times):
        t_b = torch.full((len(x),), t, dtype=x.dtype)
        x = x - (t - t_next) * average(x, t_b, torch.full_like(t_b, t - t_next))
    return x


def pseudo_huber(diff: torch.Tensor, c: float) -> torch.Tensor:
    """Per row of diff [B, ...]: sqrt(|diff|^2 + c^2) - c (Song & Dhariwal 2023, sec. 3.3): quadratic below c,
    linear above, so a few far-off rows do not dominate the gradient."""
    sq = diff.reshape(len(diff), -1).pow(2).sum(-1)
    return (sq + c * c).sqrt() - c


def split_rows(cond: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    """The conditioning of some rows of a batch."""
    return {k: v[rows] for k, v in cond.items()}


class FewStepTrainer(DiffusionTrainer):
    """The diffusion trainer with a few-step method's `loss`, and `sample(noise, nfe)`; see the module docstring.

    Subclasses set `method` (the registry key) and write `loss(x0, cond)` and `sample(noise, nfe, generator)`.
    A batch's cond may carry its own noise under "noise" (a coupling: core/training/diffusion.paired_batches).
    """

    method = ""

    def __init__(self, model: nn.Module, config: TrainConfig, batches: BatchFn) -> None:
        if distributed.context().world_size > 1:
            raise BadInputError("The few-step trainers run in one process.")
        if config.prediction_type != "flow_prediction":
            config = replace(config, prediction_type="flow_prediction")  # every method lives on the flow path
        super().__init__(model, flow_schedule(), config, batches)

    def noise_for(
        self, x0: torch.Tensor, cond: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(eps, the rest of cond): the batch's own noise when it carries one, else fresh noise."""
        cond = dict(cond)
        eps = cond.pop("noise", None)
        if eps is None:
            eps = torch.randn(x0.shape, generator=self.generator)
        return eps.to(x0.device, x0.dtype), cond

    def uniform(self, n: int) -> torch.Tensor:
        """n draws of U[0, 1) from the trainer's generator."""
        return torch.rand(n, generator=self.generator)

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Points [n, D] from noise [n, D] (standardised units) in `nfe` network evaluations, with the sampling
        weights (the EMA copy when there is one); `generator` draws any fresh noise the rule needs."""
        raise NotImplementedError

    def samples(
        self, noise: torch.Tensor, ladder: Sequence[int] = NFE_LADDER, seed: int = 0
    ) -> dict[int, torch.Tensor]:
        """`sample` at each NFE of the ladder, from the same noise (and fresh noise from the same seed)."""
        return {nfe: self.sample(noise, nfe, torch.Generator().manual_seed(seed)) for nfe in ladder}
