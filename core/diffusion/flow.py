"""Flow matching (Lipman et al. 2023) and rectified flow (Liu et al. 2023) in the engine's one interface.

The path is the straight line x_t = (1 - t) x_0 + t eps, t in [0, 1], and the model predicts its velocity
v = dx_t/dt = eps - x_0. Divided by (1 - t), x_t is the engine's variance-exploding state x = x_0 + sigma eps
with sigma = t / (1 - t), so a flow model is one more denoiser D(x, sigma) = x_t - t v(x_t, t) with
x_t = x / (1 + sigma), t = sigma / (1 + sigma) (core/diffusion/denoisers.FlowDenoiser), and every sampler runs
on it unchanged.
Euler on that denoiser (DDIM) is exactly Euler on dx_t/dt = v in t: both move x_t to
(1 - t') x_0_hat + t' eps_hat.

Like diffusers' FlowMatchEulerDiscreteScheduler (and SD3), the network sees the time as T t (T = 1000) and a
timestep `shift` s moves the grid towards the noise: t -> s t / (1 + (s - 1) t) (Esser et al. 2024, sec. 5.3.2).
The path is a `NoiseSchedule` of kind "flow" (core/diffusion/schedules.py), so its sigmas give the sampling
grids; training draws t uniformly or from a logit-normal density, then shifted (`training_times`).

`mixture_velocity` is the exact velocity of a Gaussian mixture's path, computed in the flow's own coordinates
(independently of `GaussianMixture`): the ground truth for the adapter and for flow models' fields.
"""

from __future__ import annotations

import torch

from core.errors import BadInputError

TIME_DENSITIES = ("uniform", "logit_normal")
TIME_SCALE = 1000  # the network's time input is TIME_SCALE * t, as diffusers' flow schedulers call it


def t_of_sigma(sigma: torch.Tensor) -> torch.Tensor:
    return sigma / (1 + sigma)


def sigma_of_t(t: torch.Tensor) -> torch.Tensor:
    return t / (1 - t)


def shift_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's timestep shift: s t / (1 + (s - 1) t); s > 1 spends more of the grid near the noise."""
    if not 0 < shift <= 100:
        raise BadInputError("The timestep shift must lie in (0, 100].")
    return shift * t / (1 + (shift - 1) * t)


def training_times(n: int, generator: torch.Generator, density: str = "uniform", shift: float = 1.0) -> torch.Tensor:
    """n times in (0, 1) for a training batch: uniform (low-discrepancy, as the diffusion trainer draws its t)
    or logit-normal (sigmoid of N(0, 1), Esser et al. 2024), then shifted."""
    check_time_density(density)
    if density == "uniform":
        t = (torch.rand(1, generator=generator) + torch.arange(n) / n) % 1.0
    else:
        t = torch.sigmoid(torch.randn(n, generator=generator))
    return shift_t(t.double().clamp(1e-5, 1 - 1e-5), shift).float()


def mixture_velocity(
    means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor, y: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """E[eps - x_0 | x_t = y] for x_0 from the mixture sum_k w_k N(mu_k, s_k^2 I) (isotropic components), at
    times t [B] in (0, 1): under component k, x_t ~ N((1 - t) mu_k, ((1 - t)^2 s_k^2 + t^2) I), and the
    posterior means of x_0 and eps are linear in y."""
    y, t = y.double(), t.double().reshape(-1, 1, 1)  # [B, 1, 1] against components on the middle axis
    mu, s2 = means.double()[None], (stds.double() ** 2)[None, :, None]  # [1, K, D], [1, K, 1]
    a = 1 - t
    var = a * a * s2 + t * t  # [B, K, 1]
    r = y[:, None, :] - a * mu  # [B, K, D]
    d = y.shape[-1]
    log_w = weights.double().log()[None] - 0.5 * (r.pow(2).sum(-1) / var[..., 0] + d * var[..., 0].log())
    resp = torch.softmax(log_w, dim=1)[..., None]  # [B, K, 1]
    x0 = mu + a * s2 / var * r
    eps = t / var * r
    return (resp * (eps - x0)).sum(1)


def check_time_density(density: str) -> None:
    if density not in TIME_DENSITIES:
        raise BadInputError(f"Unknown time density {density!r}; choose one of {', '.join(TIME_DENSITIES)}.")


def flow_t_grid(steps: int, shift: float = 1.0) -> torch.Tensor:
    """The schedule's times: (i + 1) / (steps + 1) for i = 0 .. steps - 1, shifted (t = 1, infinite sigma, is
    left out: the grid's last sigma is about `steps`)."""
    u = torch.arange(1, steps + 1, dtype=torch.float64) / (steps + 1)
    return shift_t(u, shift)
