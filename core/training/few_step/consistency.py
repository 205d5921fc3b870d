"""Consistency models on the flow path: distillation from a flow teacher, training without one, and the
multistep consistency sampler (Song, Dhariwal, Chen & Sutskever 2023, "Consistency models"; Song & Dhariwal
2023, "Improved techniques for training consistency models").

A consistency function maps every point x_t of a probability-flow ODE trajectory to its end x_0. Parametrised on
the flow path as
    f_theta(x, t) = x - t F_theta(x, t)        (c_skip = 1, c_out = -t),
so f(x, 0) = x holds exactly for any network F, and F is in a velocity's units: a flow-matching model's velocity
v makes f its one-Euler-step estimate of x_0, x_t - t v, which is where a distilled student starts.

Both losses compare f at two neighbouring times t_n < t_{n+1} of a grid (`consistency_grid`: Karras et al.'s
sigma grid, rho = 7, sigma 0.002 .. 80, mapped by t = sigma / (1 + sigma), its ends moved to t = 0 and t = 1):
- distillation (CD): x_{t_{n+1}} = (1 - t_{n+1}) x_0 + t_{n+1} eps, x_hat_{t_n} one teacher ODE step (Heun or
  Euler) from it, loss |f_theta(x_{t_{n+1}}, t_{n+1}) - f_theta-(x_hat_{t_n}, t_n)|^2 with theta- the EMA copy
  (stop-grad), n uniform over the N intervals;
- training (CT, the improved recipe): x_{t_n} and x_{t_{n+1}} share the same x_0 and eps, so no teacher is needed;
  theta- = stop-grad(theta) (no EMA target); the pseudo-Huber loss weighted by 1 / (t_{n+1} - t_n) (iCT's
  1 / (sigma_{n+1} - sigma_n), in the path's own time, since sigma is infinite at t = 1); the number of grid
  points doubles along the run, N(k) = min(s0 2^floor(k / K'), s1) + 1 with K' = floor(K / (log2(s1 / s0) + 1));
  intervals drawn with iCT's lognormal weights p(n) ~ erf((log sigma_{n+1} - P_mean) / (sqrt 2 P_std)) -
  erf((log sigma_n - P_mean) / (sqrt 2 P_std)), which on this path is a logit-normal density of t
  (log sigma = logit t).

Multistep sampling (Algorithm 1 of Song et al. 2023) is the engine's `consistency` sampler: x = f(eps, 1); for each
next time t_k (evenly spaced): x_{t_k} = (1 - t_k) x + t_k z with fresh noise z, x = f(x_{t_k}, t_k).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from core.diffusion.flow import t_of_sigma
from core.diffusion.grids import karras_sigmas
from core.diffusion.samplers import sample
from core.errors import BadInputError
from core.models.mlp import MLPConfig, MLPDenoiser, build_mlp
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import (
    FewStepTrainer,
    Field,
    column,
    net_velocity,
    on_path,
    pseudo_huber,
    sampling_times,
)

START_SIGMA = 1e6  # t = 1 - 1e-6 stands in for t = 1 (infinite sigma) where sampling starts
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0  # EDM's and iCT's range, in the VE sigma of x_t / (1 - t)
SOLVERS = ("euler", "heun")
MAX_GRID = 4096


def consistency_function(net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """f(x, t) = x - t F(x, t): x [B, D] at times t [B]; exactly x at t = 0."""
    return x - column(t, x) * net_velocity(net, x, t)


def consistency_grid(points: int) -> torch.Tensor:
    """t_0 = 0 < t_1 < ... < t_{points-1} = 1 (float64): `points - 1` Karras sigmas and the final 0, increasing,
    mapped to t = sigma / (1 + sigma); the largest moved from t(80) ~ 0.988 to 1, where sampling starts."""
    if not 2 <= points <= MAX_GRID:
        raise BadInputError(f"A consistency grid has 2 to {MAX_GRID:,} points.")
    t = t_of_sigma(karras_sigmas(points - 1, SIGMA_MIN, SIGMA_MAX, RHO).flip(0))
    t[-1] = 1.0
    return t


def lognormal_weights(grid: torch.Tensor, p_mean: float = -1.1, p_std: float = 2.0) -> torch.Tensor:
    """iCT's probability of each interval [t_n, t_{n+1}] of the grid [N] -> [N - 1]: the mass a normal density of
    log sigma = logit t (mean p_mean, std p_std) puts between its ends."""
    log_sigma = torch.logit(grid.double())  # -inf at t = 0, +inf at t = 1: erf gives -1 and 1 there
    cdf = torch.erf((log_sigma - p_mean) / (math.sqrt(2) * p_std))
    mass = (cdf[1:] - cdf[:-1]).clamp_min(0)
    return mass / mass.sum()


def ode_step(velocity: nn.Module, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, solver: str) -> torch.Tensor:
    """One step of the flow teacher's ODE dx/dt = v(x, t) from t to t_next (both [B]): Euler, or Heun's
    trapezoid (Euler's end point, then the mean of the velocities at both ends)."""
    h = column(t_next - t, x)
    v = net_velocity(velocity, x, t)
    x_euler = x + h * v
    if solver == "euler":
        return x_euler
    return x + h * (v + net_velocity(velocity, x_euler, t_next)) / 2


def consistency_sample(
    f: Field, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The multistep consistency sampler (the engine's, core/diffusion/samplers.consistency) over the evenly
    spaced times of the flow path: f is the denoiser D(x, sigma) = f(x / (1 + sigma), sigma / (1 + sigma)) of
    the engine's coordinates x = x_t / (1 - t), and t = 1, where sigma is infinite, enters as START_SIGMA. So
    x = f(noise, 1), then x = f((1 - t_k) x + t_k z, t_k) with fresh z ~ N(0, I) from `generator` at each t_k."""
    generator = generator or torch.Generator().manual_seed(0)
    times = torch.tensor(sampling_times(nfe), dtype=torch.float64)
    sigmas = (times / (1 - times)).clamp(max=START_SIGMA)  # t = 1 divides by zero: inf, clamped

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return f(x / (1 + column(sigma, x)), (sigma / (1 + sigma)).to(x.dtype))

    return sample("consistency", denoiser, noise * START_SIGMA, sigmas, generator=generator)


class _Consistency(FewStepTrainer):
    def sample(self, noise: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        net = self.sampling_model
        with torch.inference_mode():
            return consistency_sample(lambda x, t: consistency_function(net, x, t), noise, nfe, generator)


class ConsistencyDistillation(_Consistency):
    """CD from a flow-matching teacher (`teacher(x, TIME_SCALE t)` -> velocity), the student starting from its
    weights; the target network is the EMA copy (the config's ema_decay is CD's mu), else stop-grad theta."""

    method = "consistency_distillation"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        teacher: nn.Module,
        intervals: int = 18,
        solver: str = "heun",
    ) -> None:
        if solver not in SOLVERS:
            raise BadInputError(f"Unknown ODE solver {solver!r}; choose {', '.join(SOLVERS)}.")
        super().__init__(model, config, batches)
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)  # the caller's model stays as it is
        self.grid = consistency_grid(intervals + 1).float()
        self.solver = solver

    @classmethod
    def create(
        cls, *, net: MLPConfig, config: TrainConfig, batches: BatchFn, teacher: MLPDenoiser | None, **options
    ) -> ConsistencyDistillation:
        if teacher is None:
            raise BadInputError("Consistency distillation needs a trained flow-matching teacher.")
        student = build_mlp(net, config.seed)
        student.load_state_dict(teacher.state_dict())  # f starts as the teacher's x_t - t v
        return cls(student, config, batches, teacher=teacher, **options)

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        eps, _ = self.noise_for(x0, cond)
        n = torch.randint(len(self.grid) - 1, (len(x0),), generator=self.generator)
        t_lo, t_hi = self.grid[n].to(x0.device), self.grid[n + 1].to(x0.device)
        x_hi = on_path(x0, eps, t_hi)
        target_net = self.ema if self.ema is not None else self.model
        with torch.no_grad():
            x_lo = ode_step(self.teacher, x_hi, t_hi, t_lo, self.solver)
            target = consistency_function(target_net, x_lo, t_lo)
        return torch.mean((consistency_function(self._net, x_hi, t_hi) - target) ** 2)


class ConsistencyTraining(_Consistency):
    """CT with the improved techniques (see the module docstring); `total_steps` is the run's K, over which the
    grid's points double from s0 + 1 to s1 + 1."""

    method = "consistency_training"

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchFn,
        *,
        total_steps: int,
        s0: int = 10,
        s1: int = 1280,
        p_mean: float = -1.1,
        p_std: float = 2.0,
        huber_c: float | None = None,
    ) -> None:
        if not (1 <= s0 <= s1 < MAX_GRID and total_steps >= 1 and p_std > 0):
            raise BadInputError(f"Consistency training needs 1 <= s0 <= s1 < {MAX_GRID:,} and a positive budget.")
        super().__init__(model, config, batches)
        self.total_steps, self.s0, self.s1, self.p_mean, self.p_std = total_steps, s0, s1, p_mean, p_std
        self.huber_c = huber_c
        self._grids: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # points -> (grid, interval weights)

    @classmethod
    def create(
        cls, *, net: MLPConfig, config: TrainConfig, batches: BatchFn, total_steps: int, **options
    ) -> ConsistencyTraining:
        return cls(build_mlp(net, config.seed), config, batches, total_steps=total_steps, **options)

    def grid_points(self, step: int) -> int:
        """N(k): the grid's points at step k of K = total_steps (Song & Dhariwal 2023's doubling curriculum)."""
        stage = max(1, self.total_steps // (int(math.log2(self.s1 // self.s0)) + 1))
        return min(self.s0 * 2 ** min(step // stage, 30), self.s1) + 1

    def loss(self, x0: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        eps, _ = self.noise_for(x0, cond)
        points = self.grid_points(self.step)
        if points not in self._grids:
            grid = consistency_grid(points)
            self._grids[points] = (grid.float(), lognormal_weights(grid, self.p_mean, self.p_std))
        grid, weights = self._grids[points]
        n = torch.multinomial(weights, len(x0), replacement=True, generator=self.generator)
        t_lo, t_hi = grid[n].to(x0.device), grid[n + 1].to(x0.device)
        with torch.no_grad():  # theta- = stop-grad(theta): the same weights, no EMA target (iCT)
            target = consistency_function(self.model, on_path(x0, eps, t_lo), t_lo)
        pred = consistency_function(self._net, on_path(x0, eps, t_hi), t_hi)
        c = self.huber_c if self.huber_c is not None else 0.00054 * math.sqrt(x0[0].numel())
        return torch.mean(pseudo_huber(pred - target, c) / (t_hi - t_lo))
