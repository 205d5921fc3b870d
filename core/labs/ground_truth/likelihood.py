"""Log densities by the probability-flow ODE (core/diffusion/likelihood.py, the instantaneous change of variables
of Chen et al. 2018 and Song et al. 2021) against a reference, on a grid and on held-out points.

- `mixture_likelihood`: a toy-lab model learnt from the mixture beside the mixture's closed form and the ODE
  with its exact denoiser (which must match the closed form: the check of the ODE itself). That ODE is adaptive
  (`adaptive_log_density`) and gives each point an estimated error: points whose estimate is over TRUSTED nats
  (or that ran out of calls) are counted, and the page marks them.
- `latent_likelihood`: a latent MNIST model's unconditional half over its VAE's plane beside a kernel density
  estimate of the training digits' latents; there is no closed form there.
- `held_out_nll`: the statistics of the tables (mean NLL with its standard error, bits per dimension, and the
  paired gap to the truth).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion.likelihood import (
    ErrorControl,
    LogDensity,
    ODESettings,
    adaptive_log_density,
    bits_per_dim,
    log_density,
)
from core.diffusion.mixture import GaussianMixture
from core.labs.ground_truth.mixtures import grid, moments, view_box
from core.labs.ground_truth.noise import SIGMA_MIN
from core.labs.latent import LatentDiffusion
from core.labs.toy import ToyRun
from core.metrics.kde import kde_log_density

LIKELIHOOD_GRID, HELD_OUT, HELD_OUT_SEED = 40, 2000, 12_345  # the mixture's map, its held-out draws
LATENT_GRID, LATENT_HELD_OUT = 24, 400  # the latent plane's map, the test digits encoded
# RK4 steps for a learned model's density. Its time input is interpolated piecewise-linearly between the
# schedule's steps, so the ODE has kinks and more steps help little: against 256 steps, 32 move the toy
# model's mean log density by 3e-3 nats (a few points by up to 0.3), 96 by 1.5e-3 (0.1).
MODEL_ODE_STEPS = 32
TRUSTED = 1e-3  # nats: a value of the exact ODE whose estimated error is larger is marked on the page
# The exact ODE runs up to this many times the mixture's spread (the root of its average per-axis variance): the
# isotropic Gaussian prior there is exact to 1e-6 nats on every preset (at sigma 500 it was up to 2e-3 off, its
# error falling as 1 / sigma^2), and the steps up there are long (ErrorControl.far_step).
PRIOR_SPREADS = 1e4
EXACT_CONTROL = ErrorControl()  # the exact ODE's tolerance and its cap on the work per point

OnStep = Callable[[int, int], None]  # (done, of): an ODE's progress, in steps or in thousandths of its way


def model_log_density(run: ToyRun, x: torch.Tensor, steps: int = 32, on_step: OnStep | None = None) -> torch.Tensor:
    """log p(x) [B] in nats, in the data's own units, of a toy-lab model by the probability-flow ODE over its
    schedule's range of sigma. The model works in standardised units
    y = (x - m) / s, so log p(x) = log p(y) - D log s."""
    settings = ODESettings.for_schedule(run.schedule, steps)
    y = run.standardizer.transform(x.double())
    with torch_threads(run.threads):
        log_py = log_density(run.denoiser(), y, settings, on_step)
    return log_py - x.shape[1] * math.log(run.standardizer.scale)


def exact_settings(mix: GaussianMixture) -> ODESettings:
    """The exact ODE's range and prior for a mixture: sigma from SIGMA_MIN up to PRIOR_SPREADS spreads (at least
    500), the prior with the mixture's mean and average per-axis variance."""
    mean, var = moments(mix)
    top = max(500.0, PRIOR_SPREADS * math.sqrt(var))
    return ODESettings(sigma_min=SIGMA_MIN, sigma_max=top, prior_mean=tuple(mean.tolist()), prior_var=var)


def exact_log_density(
    mix: GaussianMixture, x: torch.Tensor, control: ErrorControl | None = None, on_step: OnStep | None = None
) -> tuple[LogDensity, torch.Tensor]:
    """log p(x) [B] by the adaptive ODE with the exact denoiser (with its estimated errors, `exact_settings`; control:
    EXACT_CONTROL where None) and in closed form."""
    with torch_threads(1):
        found = adaptive_log_density(mix.denoise, x.double(), exact_settings(mix), control or EXACT_CONTROL, on_step)
    return found, mix.log_prob(x, SIGMA_MIN)


def latent_log_density(
    model: LatentDiffusion, z: torch.Tensor, steps: int = 32, on_step: OnStep | None = None
) -> torch.Tensor:
    """log p(z) [B] in nats of a latent MNIST model's unconditional half (the null label) at VAE latents z [B, 2],
    by the probability-flow ODE; the model works in standardised latents y = (z - m) / s, so
    log p(z) = log p(y) - sum log s."""
    settings = ODESettings.for_schedule(model.schedule, steps)
    y = (z.double() - model.mean.double()) / model.std.double()
    with torch_threads(1):
        log_py = log_density(model.conditioned(None, len(z), 1.0), y, settings, on_step)
    return log_py - float(model.std.double().log().sum())


@dataclass(frozen=True)
class Panel:
    """One heat map: a log density on the grid, and where it was estimated (the exact ODE) its errors."""

    title: str
    z: np.ndarray  # [size, size] log density, nats (rows along y)
    error: np.ndarray | None = None  # [size, size] estimated error, nats
    capped: np.ndarray | None = None  # [size, size] bool: the ODE ran out of calls there

    @property
    def marked(self) -> np.ndarray | None:
        """[size, size] bool: estimated error over TRUSTED nats, or out of calls."""
        return None if self.error is None or self.capped is None else (self.error > TRUSTED) | self.capped


@dataclass(frozen=True)
class Evaluated:
    """One log density on the grid and at the held-out points."""

    panel: Panel
    held: torch.Tensor  # [M] nats
    found: LogDensity | None = None  # the adaptive ODE's whole result, grid then held-out points, where it ran


def density_maps(
    log_densities: dict[str, Callable[[torch.Tensor], torch.Tensor | LogDensity]],
    lo: Sequence[float],
    hi: Sequence[float],
    size: int,
    held_out: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray, dict[str, Evaluated]]:
    """Each log density on a size x size grid over [lo, hi] and at the held-out points, one call each (the
    ODEs run once over both): the grid's axes, and per title the panel and the held-out values [M]."""
    xs, ys, mesh = grid(lo, hi, size)
    points = torch.cat([mesh, held_out.double()])
    cells = len(mesh)

    def on_grid(t: torch.Tensor) -> np.ndarray:
        return t[:cells].reshape(size, size).numpy()

    found = {}
    for title, log_p in log_densities.items():
        values = log_p(points)
        if isinstance(values, LogDensity):
            panel = Panel(title, on_grid(values.value), on_grid(values.error), on_grid(values.capped))
            found[title] = Evaluated(panel, values.value[cells:], values)
        else:
            found[title] = Evaluated(Panel(title, on_grid(values)), values[cells:])
    return xs, ys, found


# ---- the statistics on held-out points -------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOutNLL:
    """The mean negative log-likelihood of held-out points under one density, and against the truth on the same
    points the mean paired gap (> 0: the density gives the points less than the truth does)."""

    what: str
    nll: float  # nats per point
    se: float  # its standard error
    gap: float | None = None  # mean of (log p_truth - log p), nats; None without a truth
    gap_se: float | None = None  # the standard error of the paired difference

    @property
    def bits_per_dim(self) -> float:
        return bits_per_dim(self.nll, 2)


def held_out_nll(what: str, log_p: torch.Tensor, truth: torch.Tensor | None = None) -> HeldOutNLL:
    """The statistics of the log densities log_p [M] of held-out points (and of truth [M] on the same points)."""
    nll = -float(log_p.mean())
    se = float(log_p.std()) / math.sqrt(len(log_p))
    if truth is None:
        return HeldOutNLL(what, nll, se)
    gap = truth - log_p
    return HeldOutNLL(what, nll, se, float(gap.mean()), float(gap.std()) / math.sqrt(len(gap)))


@dataclass(frozen=True)
class LikelihoodMaps:
    xs: np.ndarray
    ys: np.ndarray
    panels: list[Panel]
    nlls: list[HeldOutNLL]  # one per density, on the held-out points
    ode_gap: float  # max |exact ODE - closed form| over the held-out points, nats (nan without a closed form)
    grid_gap: float  # the same over the grid
    # The exact ODE's estimates over the grid and the held-out points together (nan and 0 without it):
    worst_error: float = float("nan")  # the largest estimated error, nats
    marked: int = 0  # points whose estimated error is over TRUSTED, or that ran out of calls
    capped: int = 0  # points that ran out of calls
    points: int = 0  # grid and held-out points
    unmarked_gap: float = float("nan")  # max |exact ODE - closed form| over the points not marked, nats


# ---- the two experiments -----------------------------------------------------------------------------------------


def mixture_likelihood(
    mix: GaussianMixture, run: ToyRun, on_step: OnStep | None = None, on_exact: OnStep | None = None
) -> LikelihoodMaps:
    """The mixture's log density in closed form and by the adaptive ODE with its exact denoiser (`on_exact` sees its
    progress, in thousandths), and the model's by its ODE (`on_step` sees its steps), on a LIKELIHOOD_GRID grid
    over the mixture and on HELD_OUT fresh draws. The model is compared with the truth blurred by its own smallest
    noise level, where its ODE starts."""
    held, _ = mix.sample(HELD_OUT, torch.Generator().manual_seed(HELD_OUT_SEED))
    model_title = f"ODE, {run.name} ({run.step:,} steps)"
    lo, hi = view_box(mix)
    xs, ys, found = density_maps(
        {
            "Closed form": lambda x: mix.log_prob(x, SIGMA_MIN),
            "ODE, exact denoiser": lambda x: exact_log_density(mix, x, on_step=on_exact)[0],
            model_title: lambda x: model_log_density(run, x.float(), MODEL_ODE_STEPS, on_step),
        },
        lo.tolist(),
        hi.tolist(),
        LIKELIHOOD_GRID,
        held,
    )
    closed, exact, learned = found.values()
    estimate = exact.found
    assert estimate is not None  # the exact ODE is the adaptive one
    marked = (estimate.error > TRUSTED) | estimate.capped
    truth = torch.cat([torch.from_numpy(closed.panel.z).reshape(-1), closed.held])  # grid, then held-out
    gap = (estimate.value - truth).abs()
    model_blur = run.schedule.sigma_min * run.standardizer.scale  # where the model's ODE starts, in data units
    model_row = f"Model {run.name}, {len(run.cloud.points):,} training points, {run.step:,} steps"
    return LikelihoodMaps(
        xs=xs,
        ys=ys,
        panels=[e.panel for e in found.values()],
        nlls=[
            held_out_nll("Closed form (the truth)", closed.held),
            held_out_nll("ODE with the exact denoiser", exact.held, closed.held),
            held_out_nll(model_row, learned.held, mix.log_prob(held, model_blur)),
        ],
        ode_gap=float((exact.held - closed.held).abs().max()),
        grid_gap=float(np.abs(exact.panel.z - closed.panel.z).max()),
        worst_error=float(estimate.error.max()),
        marked=int(marked.sum()),
        capped=int(estimate.capped.sum()),
        points=len(estimate.value),
        unmarked_gap=float(gap[~marked].max()) if bool((~marked).any()) else float("nan"),
    )


def latent_likelihood(
    model: LatentDiffusion, train: np.ndarray, test: np.ndarray, on_step: OnStep | None = None
) -> LikelihoodMaps:
    """A latent model's log density by its ODE (`on_step` sees its steps) beside a kernel density estimate
    (Scott's bandwidth) of the training digits' latents train [N, 2], on a LATENT_GRID grid over their 0.5% to
    99.5% quantiles and at held-out latents test [M, 2]."""
    lo, hi = np.quantile(train, 0.005, axis=0), np.quantile(train, 0.995, axis=0)
    xs, ys, found = density_maps(
        {
            "KDE of the training latents": lambda z: torch.from_numpy(kde_log_density(train, z.numpy())),
            f"ODE, {model.name}": lambda z: latent_log_density(model, z, MODEL_ODE_STEPS, on_step),
        },
        lo.tolist(),
        hi.tolist(),
        LATENT_GRID,
        torch.from_numpy(test),
    )
    kde, learned = found.values()
    return LikelihoodMaps(
        xs=xs,
        ys=ys,
        panels=[e.panel for e in found.values()],
        nlls=[
            held_out_nll(f"KDE of {len(train):,} training latents (Scott)", kde.held),
            held_out_nll(f"{model.name}: its unconditional half, by its ODE", learned.held),
        ],
        ode_gap=float("nan"),
        grid_gap=float("nan"),
    )
