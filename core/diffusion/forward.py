"""The forward (noising) process q(x_t | x_0), in both parameterisations.

VP (variance preserving, DDPM):  x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps
VE (variance exploding, EDM):    x   = x_0 + sigma eps,   sigma = sqrt((1 - ab) / ab),   x = x_t / sqrt(ab)

Both describe the same process; VP keeps the values in a fixed range, VE makes the noise level explicit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError
from core.text import plain_label


def _per_sample(v: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or a [B] vector over the trailing dimensions of `like`."""
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim)) if v.ndim else v


def q_sample_vp(x0: torch.Tensor, alpha_bar: torch.Tensor | float, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (Ho et al. 2020, eq. 4). alpha_bar: scalar or [B]."""
    ab = _per_sample(alpha_bar, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_sample_ve(x0: torch.Tensor, sigma: torch.Tensor | float, eps: torch.Tensor) -> torch.Tensor:
    """x = x_0 + sigma eps (Song et al. 2021, VE SDE; Karras et al. 2022). sigma: scalar or [B]."""
    return x0 + _per_sample(sigma, x0) * eps


def forward_trajectory(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int] | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    form: str = "vp",
    noise: str = "chain",
) -> torch.Tensor:
    """x_t for every t in `timesteps` (increasing), stacked: shape [len(timesteps), *x0.shape].

    noise="chain": one draw of the Markov chain x_0 -> x_1 -> ... seen at the given t. Between listed
        times a < b the VE state gains independent noise of variance sigma_b^2 - sigma_a^2, which is
        the exact joint law of the chain at those times.
    noise="shared": the same eps for every t, x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps. Each x_t has
        the right marginal, and the row shows one image fading into one noise image.
    form="vp" returns x_t on the schedule's own path (sqrt(ab) x_0 + sqrt(1 - ab) eps, or (1 - t) x_0 + t eps
    on the flow path: `NoiseSchedule.signal_and_noise`); form="ve" returns x_0 + sigma_t eps.
    """
    ts = torch.as_tensor(timesteps, dtype=torch.long)
    if ts.ndim != 1 or len(ts) == 0:
        raise BadInputError("Give at least one timestep.")
    if bool((ts < 0).any() or (ts >= schedule.num_steps).any()):
        raise BadInputError(f"Timesteps must lie in [0, {schedule.num_steps - 1}].")
    if bool((ts[1:] < ts[:-1]).any()):
        raise BadInputError("Timesteps must be in increasing order.")
    if form not in ("vp", "ve") or noise not in ("chain", "shared"):
        raise BadInputError("form must be 'vp' or 've' and noise 'chain' or 'shared'.")

    sigmas = schedule.sigmas[ts].to(x0.dtype)
    if noise == "shared":
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        ve = torch.stack([q_sample_ve(x0, s, eps) for s in sigmas])
    else:
        increments = torch.sqrt(torch.diff(sigmas**2, prepend=sigmas.new_zeros(1)))
        draws = torch.randn((len(ts), *x0.shape), generator=generator, dtype=x0.dtype).to(x0.device)
        ve = x0 + torch.cumsum(_per_sample(increments, draws) * draws, dim=0)
    if form == "ve":
        return ve
    scale = schedule.signal_and_noise(sigmas)[0].to(ve.dtype)  # x_t = scale * (x_0 + sigma eps)
    return _per_sample(scale, ve) * ve


def parse_timesteps(text: str, num_steps: int, limit: int = 16) -> list[int]:
    """'0, 50, 999' -> [0, 50, 999]: sorted, unique, each in [0, num_steps), at most `limit` of them."""
    if len(text) > 8 * limit:  # longer than `limit` numbers of up to 6 digits with their commas
        raise BadInputError(f"Show at most {limit} timesteps at once.")
    try:
        values = sorted({int(v) for v in text.replace(";", ",").split(",") if v.strip()})
    except ValueError as e:
        got = plain_label(text, 40)
        raise BadInputError(f"Write the timesteps as whole numbers separated by commas (got '{got}').") from e
    if not values or values[0] < 0 or values[-1] >= num_steps:
        raise BadInputError(f"Every timestep must lie between 0 and {num_steps - 1}.")
    if len(values) > limit:
        raise BadInputError(f"Show at most {limit} timesteps at once (got {len(values)}).")
    return values
