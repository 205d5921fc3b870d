"""Deterministic inversion: data run up the probability-flow ODE to noise, and back down.

A deterministic sampler integrates dx/dsigma = (x - D(x, sigma)) / sigma (EDM's form). Run on the reversed
grid, sigma_min ... sigma_max, the same function integrates it upwards: for Euler this is DDIM inversion (Song,
Meng & Ermon 2021, sec. 4.3; Dhariwal & Nichol 2021, appendix F), and the exact linear part and the multistep
extrapolation of DPM-Solver++(2M) hold for h < 0 as well (Lu et al. 2022). So inversion here is the sampler
itself on the ascending grid, each step written once, in core/diffusion/samplers.py.

The data point is taken as the state at sigma_min, the smallest noise level of the sampling grid: sampling's
last step, from sigma_min to 0, replaces x by the denoiser's estimate D(x, sigma_min), a jump that no ODE step
undoes. `round_trip` reports both: the ODE's reconstruction (at sigma_min, which converges to the data as the
steps grow, at the sampler's order) and the full one with that last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.diffusion.denoisers import Denoiser
from core.diffusion.samplers import SAMPLERS, Callback, get_sampler
from core.errors import BadInputError

# Samplers without fresh noise, and DDIM with eta = 0.
INVERTIBLE = (*(n for n, spec in SAMPLERS.items() if not spec.stochastic), "ddim")


def _check(name: str, sigmas: torch.Tensor) -> None:
    if name not in INVERTIBLE:
        raise BadInputError(f"{name} draws fresh noise, so it has no inverse; invert with {', '.join(INVERTIBLE)}.")
    if sigmas.ndim != 1 or len(sigmas) < 3 or float(sigmas[-1]) != 0 or bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise BadInputError("Inversion needs a sampling grid of at least 2 steps, strictly decreasing to 0.")


def _run(name: str, denoiser: Denoiser, x: torch.Tensor, grid: torch.Tensor, callback: Callback) -> torch.Tensor:
    name = "euler" if name == "ddim" else name  # DDIM with eta = 0 is Euler in sigma, step for step
    with torch.inference_mode():
        return get_sampler(name).fn(denoiser, x, grid, generator=None, callback=callback)


def invert(
    name: str, denoiser: Denoiser, x0: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None
) -> torch.Tensor:
    """The noise at sigmas[0] (sigma_max) that sampler `name` on the sampling grid `sigmas` (decreasing, ending
    in 0) takes back to x0: x0 is placed at sigma_min = sigmas[-2] and the sampler run up the grid."""
    _check(name, sigmas)
    return _run(name, denoiser, x0, sigmas[:-1].flip(0), callback)


def regenerate(
    name: str, denoiser: Denoiser, x_max: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling from x_max down the grid: the state at sigma_min, and the sample (after the last step to 0)."""
    _check(name, sigmas)
    at_min = _run(name, denoiser, x_max, sigmas[:-1], callback)
    return at_min, _run(name, denoiser, at_min, sigmas[-2:], None)


@dataclass(frozen=True, kw_only=True)
class RoundTrip:
    noise: torch.Tensor  # [B, ...] the inverted x at sigma_max
    at_sigma_min: torch.Tensor  # [B, ...] back down the ODE to sigma_min
    sample: torch.Tensor  # [B, ...] and the sampler's last step to 0
    ode_error: torch.Tensor  # [B] RMS over each sample's entries: at_sigma_min vs the data
    error: torch.Tensor  # [B] RMS: sample vs the data


def round_trip(name: str, denoiser: Denoiser, x0: torch.Tensor, sigmas: torch.Tensor) -> RoundTrip:
    """Invert x0 with sampler `name` on the grid `sigmas`, then sample back on the same grid (see the module
    docstring); the errors are root-mean-square over each sample's entries, in the data's units."""
    noise = invert(name, denoiser, x0, sigmas)
    at_min, out = regenerate(name, denoiser, noise, sigmas)

    def rms(a: torch.Tensor) -> torch.Tensor:
        return (a - x0).flatten(1).pow(2).mean(1).sqrt()

    return RoundTrip(noise=noise, at_sigma_min=at_min, sample=out, ode_error=rms(at_min), error=rms(out))
