"""Noise schedules of discrete-time diffusion models, and the sigma grids samplers walk.

A discrete-time (DDPM-style) model is trained on x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps for integer
t in [0, T), with ab_t = alpha_bar_t = prod_{s <= t} (1 - beta_s). The same process in "variance
exploding" coordinates x = x_t / sqrt(ab_t) = x_0 + sigma_t eps has sigma_t = sqrt((1 - ab_t) / ab_t),
so every schedule is fully described by its increasing sigma_t, and every sampler works on a decreasing
grid of sigmas ending in 0 (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models", section 2).

Everything here is computed in float64 and returned as float64 tensors; callers cast where they need to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from core.diffusion.flow import flow_t_grid, sigma_of_t
from core.diffusion.grids import karras_sigmas, log_snr_sigmas
from core.errors import BadInputError

SPACINGS = ("leading", "trailing", "linspace", "uniform-time", "log-snr", "karras")
TIMESTEP_SPACINGS = SPACINGS[:3]
MAX_TRAIN_STEPS = 100_000
# Starting a sampler at sigma ~ 2e4 (the cosine schedule's last step, alpha_bar ~ 2e-9) multiplies any
# error of an epsilon model by sigma. diffusers recommends clipping log-SNR at -2 * 5.1 for the cosine
# schedule (`lambda_min_clipped`), i.e. sigma <= exp(5.1) ~ 164; DDPM's linear schedule ends at 157.
DEFAULT_MAX_SIGMA = math.exp(5.1)
ZERO_SNR_ALPHA_BAR = 1e-20  # a zero-terminal-SNR schedule's last alpha_bar (see `zero_terminal_snr`)


def _linear(T: int, start: float, end: float) -> torch.Tensor:
    """Ho et al. 2020: betas evenly spaced from start to end."""
    return torch.linspace(start, end, T, dtype=torch.float64)


def _scaled_linear(T: int, start: float, end: float) -> torch.Tensor:
    """Latent diffusion / Stable Diffusion: sqrt(beta) evenly spaced, so betas grow like a square."""
    return torch.linspace(math.sqrt(start), math.sqrt(end), T, dtype=torch.float64) ** 2


def _quadratic(T: int, start: float, end: float) -> torch.Tensor:
    """Betas quadratic in t: start + (end - start) (t / (T - 1))^2.

    Some tutorials call `scaled_linear` "quadratic"; here the name means quadratic in t, which keeps
    betas small for longer and destroys the signal later than `linear`.
    """
    u = torch.linspace(0.0, 1.0, T, dtype=torch.float64)
    return start + (end - start) * u**2


def _sigmoid(T: int, start: float, end: float) -> torch.Tensor:
    """Betas following a logistic curve over [-6, 6] (as in diffusers' "sigmoid" schedule)."""
    return torch.sigmoid(torch.linspace(-6.0, 6.0, T, dtype=torch.float64)) * (end - start) + start


def _betas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """beta_t = 1 - ab_t / ab_{t-1}: the betas of a decreasing alpha_bar sequence."""
    ab = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    return 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])


def _flow(T: int, start: float, end: float, shift: float = 1.0) -> torch.Tensor:
    """Flow matching's straight path x_t = (1 - t) x_0 + t eps (core/diffusion/flow.py) at t = (i + 1) / (T + 1),
    shifted: in VE terms sigma = t / (1 - t), so alpha_bar = 1 / (1 + sigma^2). `start` and `end` are not used."""
    return _betas(1 / (1 + sigma_of_t(flow_t_grid(T, shift)) ** 2))


def cosine_alpha_bar(u: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal 2021 (Improved DDPM), eq. 17: f(u) = cos^2(pi/2 (u + s) / (1 + s)), u = t / T."""
    return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2


def _cosine(T: int, start: float, end: float, max_beta: float = 0.999) -> torch.Tensor:
    """Improved DDPM cosine schedule: beta_t = 1 - f((t+1)/T) / f(t/T), clipped at 0.999 near t = T.

    `start` and `end` are not used: the schedule has no beta range.
    """
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = cosine_alpha_bar(u)
    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)


@dataclass(frozen=True, kw_only=True)
class ScheduleKind:
    """A named family of beta schedules."""

    name: str
    title: str
    make: Callable[[int, float, float], torch.Tensor]
    beta_start: float | None  # default range; None where the schedule has no beta range
    beta_end: float | None
    formula: str  # LaTeX, for the pages
    path: str = "vp"  # how x_t is formed: "vp" (sqrt(ab) x_0 + sqrt(1 - ab) eps) or "flow" ((1 - t) x_0 + t eps)


SCHEDULE_KINDS: dict[str, ScheduleKind] = {
    k.name: k
    for k in (
        ScheduleKind(
            name="linear",
            title="Linear (DDPM)",
            make=_linear,
            beta_start=1e-4,
            beta_end=0.02,
            formula=r"\beta_t = \beta_0 + (\beta_1-\beta_0)\,\tfrac{t}{T-1}",
        ),
        ScheduleKind(
            name="scaled_linear",
            title="Scaled linear (Stable Diffusion)",
            make=_scaled_linear,
            beta_start=0.00085,
            beta_end=0.012,
            formula=r"\beta_t = \big(\sqrt{\beta_0} + (\sqrt{\beta_1}-\sqrt{\beta_0})\tfrac{t}{T-1}\big)^2",
        ),
        ScheduleKind(
            name="cosine",
            title="Cosine (Improved DDPM)",
            make=_cosine,
            beta_start=None,
            beta_end=None,
            formula=r"\bar\alpha_t = \frac{f(t)}{f(0)},\; "
            r"f(t) = \cos^2\!\Big(\frac{t/T + s}{1+s}\cdot\frac{\pi}{2}\Big),"
            r"\; s = 0.008,\; \beta_t \le 0.999",
        ),
        ScheduleKind(
            name="sigmoid",
            title="Sigmoid",
            make=_sigmoid,
            beta_start=1e-4,
            beta_end=0.02,
            formula=r"\beta_t = \beta_0 + (\beta_1-\beta_0)\,\mathrm{sigmoid}\big(-6 + 12\tfrac{t}{T-1}\big)",
        ),
        ScheduleKind(
            name="quadratic",
            title="Quadratic in t",
            make=_quadratic,
            beta_start=1e-4,
            beta_end=0.02,
            formula=r"\beta_t = \beta_0 + (\beta_1-\beta_0)\,\big(\tfrac{t}{T-1}\big)^2",
        ),
        ScheduleKind(
            name="flow",
            title="Flow matching (rectified flow)",
            make=_flow,
            beta_start=None,
            beta_end=None,
            formula=r"x_t = (1-t)\,x_0 + t\,\epsilon,\; t \mapsto \frac{s\,t}{1 + (s-1)\,t}\;\text{(shift } s)",
            path="flow",
        ),
    )
}

# Our kinds under diffusers' names (its `beta_schedule`); quadratic has none there.
DIFFUSERS_NAMES = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
    "sigmoid": "sigmoid",
}


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A discrete-time noise schedule: betas[t] for t = 0 .. T-1, and everything derived from them.

    Build one with `make_schedule(name, T, ...)` or `NoiseSchedule.from_alphas_cumprod(ab)`.
    All tensors are float64 of shape [T].
    """

    betas: torch.Tensor
    name: str = "custom"
    path: str = "vp"  # "flow" for flow matching's straight path (see ScheduleKind)
    shift: float = 1.0  # the flow path's timestep shift (1 for the others)

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 2:
            raise BadInputError("A noise schedule needs at least 2 steps.")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise BadInputError("Every beta must lie strictly between 0 and 1.")
        object.__setattr__(self, "betas", betas)

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor, name: str = "custom") -> NoiseSchedule:
        """The schedule whose alpha_bar is the given decreasing sequence (e.g. read from a checkpoint)."""
        return cls(_betas(alphas_cumprod), name)

    @property
    def num_steps(self) -> int:
        return len(self.betas)

    @cached_property
    def alphas_cumprod(self) -> torch.Tensor:
        """alpha_bar_t = prod_{s<=t} (1 - beta_s): the signal's share of the variance at t."""
        return torch.cumprod(1 - self.betas, dim=0)

    @cached_property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ab / (1 - ab) = 1 / sigma^2."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    @property
    def log_snr(self) -> torch.Tensor:
        """lambda_t = log(ab / (1 - ab)) = -2 log sigma_t."""
        return -2 * self.log_sigmas

    @cached_property
    def sigmas(self) -> torch.Tensor:
        """sigma_t = sqrt((1 - ab) / ab): the noise level of x_t / sqrt(ab_t) = x_0 + sigma_t eps."""
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()

    @cached_property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @cached_property
    def _log_sigmas_np(self) -> np.ndarray:
        return self.log_sigmas.numpy()

    def sigma_to_t(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """Continuous timestep for a noise level, by linear interpolation in log sigma (the inverse of
        `t_to_sigma`). Exact (to rounding) at the training sigmas; clamped to [0, T-1] outside their range.
        Returns float64 of the same shape as `sigma`, on the CPU.
        """
        log_sigma = np.log(np.maximum(torch.as_tensor(sigma).detach().cpu().double().numpy(), 1e-30))
        steps = np.arange(self.num_steps, dtype=np.float64)
        return torch.from_numpy(np.asarray(np.interp(log_sigma, self._log_sigmas_np, steps), dtype=np.float64))

    def t_to_sigma(self, t: torch.Tensor | float) -> torch.Tensor:
        """Noise level at a continuous timestep t in [0, T-1] (clamped), log sigma linear between integers.

        This one interpolation serves sampling (the denoiser adapters map sigma back with `sigma_to_t`) and
        training at fractional t. Returns float64 of t's shape, on t's device.
        """
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0, self.num_steps - 1)
        log_sigmas = self.log_sigmas.to(t.device)
        lo = t.floor().long().clamp(max=self.num_steps - 2)
        w = t - lo
        return torch.exp((1 - w) * log_sigmas[lo] + w * log_sigmas[lo + 1])

    @property
    def sampling_cap(self) -> float | None:
        """The highest sigma a sampling grid should start from by default: DEFAULT_MAX_SIGMA for schedules that
        end above it (the cosine one ends at ~2e4), None (the schedule's own end) for the others and for the
        flow path, whose velocity model is well conditioned up to its last step (t = T / (T + 1))."""
        return DEFAULT_MAX_SIGMA if self.sigma_max > DEFAULT_MAX_SIGMA and self.path != "flow" else None

    def signal_and_noise(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with x_t = a x_0 + b eps at noise level sigma on this schedule's own path: VP
        (1, sigma) / sqrt(1 + sigma^2), or flow (1, sigma) / (1 + sigma) = (1 - t, t)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        scale = 1 / (1 + sigma) if self.path == "flow" else (1 + sigma**2).rsqrt()
        return scale, sigma * scale

    def usable_steps(self, max_sigma: float | None = None) -> int:
        """How many training steps (from t = 0) have sigma <= max_sigma: the T the sampling grids use."""
        if max_sigma is None:
            return self.num_steps
        return max(1, int((self.sigmas <= max_sigma).sum()))

    def timesteps(
        self,
        n: int,
        spacing: str = "leading",
        steps_offset: int = 0,
        max_sigma: float | None = None,
        *,
        one_more: bool = False,
    ) -> torch.Tensor:
        """n decreasing integer timesteps, spaced as diffusers' DDIMScheduler spaces them.

        leading:  (0, k, 2k, ...) with k = T // n, reversed, plus steps_offset (DDPM/DDIM papers).
        trailing: round(T, T - T/n, ...) - 1, so the first step starts at t = T - 1 (Lin et al. 2024).
        linspace: round(linspace(0, T - 1, n)), reversed.
        With max_sigma, T is the number of steps whose sigma stays below it (see DEFAULT_MAX_SIGMA).
        With `one_more` (DPMSolverMultistepScheduler's leading and linspace), n + 1 timesteps are spaced and the
        lowest is dropped.
        """
        if one_more and spacing != "trailing":
            return self.timesteps(n + 1, spacing, steps_offset, max_sigma)[:-1]
        T = self.usable_steps(max_sigma)
        _check_steps(n, T)
        if spacing == "leading":
            ts = torch.arange(n, dtype=torch.float64) * (T // n) + steps_offset
        elif spacing == "trailing":
            ts = torch.round(torch.arange(T, 0, -T / n, dtype=torch.float64)) - 1
        elif spacing == "linspace":
            ts = torch.round(torch.linspace(0, T - 1, n, dtype=torch.float64))
        else:
            raise BadInputError(f"Unknown timestep spacing {spacing!r}; choose one of leading, trailing, linspace.")
        return ts.sort(descending=True).values.clamp(0, T - 1)

    def sigmas_for_timesteps(self, timesteps: torch.Tensor, end: float = 0.0) -> torch.Tensor:
        """The sampling grid through the given (decreasing) timesteps, with a final `end` (0) appended."""
        return torch.cat(
            [
                self.t_to_sigma(torch.as_tensor(timesteps, dtype=torch.float64)),
                torch.full((1,), end, dtype=torch.float64),
            ]
        )

    def sampling_sigmas(
        self,
        n: int,
        spacing: str = "leading",
        rho: float = 7.0,
        max_sigma: float | None = None,
        *,
        steps_offset: int = 0,
        one_more: bool = False,
        to_zero: bool = True,
    ) -> torch.Tensor:
        """A decreasing grid of n sigmas followed by 0 (n denoiser steps).

        `spacing` is one of leading, trailing, linspace (integer timesteps, see `timesteps`, with `steps_offset`
        and `one_more`), uniform-time (the continuous time t evenly spaced from the top down to t = 0: a discrete
        schedule's t, the flow path's t), log-snr (evenly spaced in log sigma) or karras (with `rho`); the grids
        of core/diffusion/grids.py. `max_sigma` caps where the grid starts (None: the schedule's own sigma_max).
        Without `to_zero` the grid ends at the schedule's smallest sigma instead of 0 (diffusers'
        `set_alpha_to_one = false`, `final_sigmas_type = "sigma_min"`): its last state is x at t = 0.
        """
        end = 0.0 if to_zero else self.sigma_min
        if spacing in TIMESTEP_SPACINGS:
            grid = self.sigmas_for_timesteps(
                self.timesteps(n, spacing, steps_offset, max_sigma, one_more=one_more), end
            )
            return grid[:-1] if len(grid) > 2 and grid[-2] <= end else grid  # t = 0 is already the end: no step
        if spacing not in SPACINGS:
            raise BadInputError(f"Unknown step spacing {spacing!r}; choose one of {', '.join(SPACINGS)}.")
        _check_steps(n, self.num_steps)
        top = self.sigma_max if max_sigma is None else min(self.sigma_max, max_sigma)
        if spacing == "karras":
            grid = karras_sigmas(n, self.sigma_min, top, rho)
        elif spacing == "log-snr":
            grid = log_snr_sigmas(n, self.sigma_min, top)
        else:
            t_top = float(self.sigma_to_t(torch.tensor(top, dtype=torch.float64)))
            ts = torch.linspace(t_top, 0.0, n, dtype=torch.float64) if n > 1 else torch.full((1,), t_top)
            grid = self.sigmas_for_timesteps(ts)
        return grid if to_zero else torch.cat([grid[:-1], grid.new_full((1,), end)])

    def capped_sigmas(self, n: int, spacing: str = "trailing") -> torch.Tensor:
        """`sampling_sigmas` from the schedule's `sampling_cap` down: at most as many steps as lie below it."""
        cap = self.sampling_cap
        return self.sampling_sigmas(min(n, self.usable_steps(cap)), spacing, max_sigma=cap)


def zero_terminal_snr(betas: torch.Tensor, terminal_alpha_bar: float = ZERO_SNR_ALPHA_BAR) -> torch.Tensor:
    """Betas rescaled to zero terminal SNR (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps
    are Flawed", Algorithm 1; diffusers' `rescale_betas_zero_snr`): sqrt(alpha_bar) shifted so its last value is
    0 and scaled so its first is unchanged. The last alpha_bar, 0 there (sigma infinite), is `terminal_alpha_bar`
    here: diffusers' Euler and DPM-Solver use 2^-24; for DDPM and DDIM the default, 1e-20 (sigma = 1e10),
    changes an x_0 estimate at that step by about 1e-10 of x_t, and no later step."""
    ab_sqrt = torch.cumprod(1 - torch.as_tensor(betas, dtype=torch.float64), 0).sqrt()
    first, last = ab_sqrt[0].clone(), ab_sqrt[-1].clone()
    ab = ((ab_sqrt - last) * first / (first - last)) ** 2
    ab[-1] = terminal_alpha_bar
    return _betas(ab)


def _check_steps(n: int, T: int) -> None:
    if not 1 <= n <= T:
        raise BadInputError(f"The number of sampling steps must be between 1 and {T} (got {n}).")


def make_schedule(
    name: str = "linear",
    num_steps: int = 1000,
    beta_start: float | None = None,
    beta_end: float | None = None,
    shift: float = 1.0,
) -> NoiseSchedule:
    """Build a named schedule. beta_start/beta_end default to the schedule's usual range; `shift` is the flow
    path's timestep shift (only the flow path has one)."""
    kind = SCHEDULE_KINDS.get(name)
    if kind is None:
        raise BadInputError(f"Unknown noise schedule {name!r}; choose one of {', '.join(SCHEDULE_KINDS)}.")
    if not 2 <= num_steps <= MAX_TRAIN_STEPS:
        raise BadInputError(f"T must be between 2 and {MAX_TRAIN_STEPS:,} (got {num_steps}).")
    start = kind.beta_start if beta_start is None else beta_start
    end = kind.beta_end if beta_end is None else beta_end
    if kind.beta_start is not None and not 0 < start < end < 1:
        raise BadInputError(f"The beta range must satisfy 0 < beta_start < beta_end < 1 (got {start}, {end}).")
    if kind.path == "flow":
        return NoiseSchedule(_flow(num_steps, 0.0, 0.0, float(shift)), name, path="flow", shift=float(shift))
    if shift != 1.0:
        raise BadInputError("Only the flow path has a timestep shift.")
    return NoiseSchedule(kind.make(num_steps, start or 0.0, end or 0.0), name)
