"""Sampler accuracy on a Gaussian mixture, where the exact answer is known.

Every sampler that solves the diffusion ODE or SDE (`INTEGRATORS`: all but the multistep consistency sampler,
which takes D to be a consistency model's whole ODE solution) at NFE 1 to 200 from the same start (`accuracy`).
Deterministic samplers are measured by the RMS distance to the exact probability-flow ODE end point
(`ode_endpoint`); stochastic ones by their strong error, the RMS distance to the same sampler run with
`REFERENCE_NFE` evaluations on the SAME Brownian path (core/diffusion/brownian.py), whose own noise is zero by
construction. Both come with the fitted order (the slope of log error against log NFE). `moment_errors` adds the
weak view: errors of the component masses, means and variances, which are known exactly, with their standard
errors.

Everything runs on the Karras grid from SIGMA_MAX to SIGMA_MIN (noise.py), EDM's defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion.brownian import BrownianNoise
from core.diffusion.grids import karras_sigmas
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS, SamplerSpec, sample
from core.errors import BadInputError
from core.labs.ground_truth.noise import SIGMA_MAX, SIGMA_MIN, start_points

NFE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 200)
REFERENCE_NFE = 1000  # a stochastic sampler's own fine run, on the same Brownian path
INTEGRATORS = tuple(name for name, spec in SAMPLERS.items() if spec.integrates)
ODE_REFERENCE_STEPS = 2000
MAX_ACCURACY_POINTS = 5000
FIT_FROM_NFE = 8  # orders are fitted on NFE >= 8, where the error is in its asymptotic regime


def steps_for(spec: SamplerSpec, nfe: int, options: Mapping[str, object] | None = None) -> int:
    """The most steps whose denoiser evaluations fit in `nfe` with these options (at least one step): with the
    analytic first step, one step more than evaluations."""
    return max(1, max((n for n in range(1, nfe + 2) if spec.nfe(n, options) <= nfe), default=1))


def rms_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The root mean square over points [N, D] of their Euclidean distances: every accuracy's measure."""
    return float((x - y).pow(2).sum(1).mean().sqrt())


def fitted_order(
    nfes: Sequence[int], errors: Sequence[float], floor: float = 1e-9, upto: int | None = None
) -> float | None:
    """Minus the least-squares slope of log error against log NFE over FIT_FROM_NFE <= NFE <= `upto` (errors
    above `floor`, where round-off or the reference's own error would flatten it); None with under 3 points."""
    top = upto or max(nfes, default=0)
    pts = [
        (math.log(n), math.log(e)) for n, e in zip(nfes, errors, strict=True) if FIT_FROM_NFE <= n <= top and e > floor
    ]
    if len(pts) < 3:
        return None
    x, y = np.array(pts).T
    return float(-np.polyfit(x, y, 1)[0])


# ---- exactly known moments --------------------------------------------------------------------------------


def bonferroni_z(tests: int, alpha: float = 0.01) -> float:
    """The |z| above which one of `tests` estimates with true mean 0 lies with probability at most alpha."""
    return NormalDist().inv_cdf(1 - alpha / (2 * max(tests, 1)))


@dataclass(frozen=True)
class Moment:
    """The error of the component (and axis) whose estimate stands furthest from its exact value in units of
    its standard error, picked among `tests` estimates."""

    error: float  # |estimate - exact value|
    se: float
    tests: int

    @property
    def resolved(self) -> bool:
        """Beyond chance: exact draws are flagged with probability about 1% (Bonferroni over the tests, normal
        approximation; below some 1,000 samples the skew of squared deviations makes variance flags likelier)."""
        return self.error > bonferroni_z(self.tests) * self.se


@dataclass(frozen=True)
class MomentErrors:
    """Errors in the components' masses, means and variances, each known exactly.

    With the true responsibilities r_k(x), E[r_k] = pi_k, E[r_k (x - mu_k)] = 0 and
    E[r_k ((x - mu_k)^2 - s_k^2)] = 0 under the mixture itself, so each error is a plain average over samples
    of a quantity with a known mean, and its standard error is the samples' spread over sqrt(n)."""

    mass: Moment
    mean: Moment
    variance: Moment


def moment_errors(mix: GaussianMixture, x: torch.Tensor) -> MomentErrors:
    """The mass, mean and variance errors of samples x [N, 2] against the mixture's exact values."""
    x = x.double()
    n = len(x)
    live = mix.weights > 0  # a component of weight 0 has no samples to measure
    pi, means, var0 = mix.weights[live], mix.means[live], mix.stds[live] ** 2
    r = mix.responsibilities(x)[:, live]  # [N, K]
    dev = x[:, None, :] - means[None]  # [N, K, D]
    terms = {
        "mass": r - pi,  # [N, K]
        "mean": r[..., None] * dev / pi[:, None],  # [N, K, D]
        "variance": r[..., None] * (dev**2 - var0) / pi[:, None],
    }
    out: dict[str, Moment] = {}
    for name, t in terms.items():
        flat = t.reshape(n, -1)
        est, se = flat.mean(0).abs(), flat.std(0) / math.sqrt(n)
        worst = int((est / se.clamp_min(1e-300)).argmax())
        out[name] = Moment(float(est[worst]), float(se[worst]), flat.shape[1])
    return MomentErrors(**out)


# ---- sampler accuracy ------------------------------------------------------------------------------------


@dataclass
class SamplerAccuracy:
    name: str
    title: str
    theory: int  # the sampler's order as published (for its deterministic error)
    stochastic: bool  # measured by its strong error (else: against the exact ODE end point)
    nfes: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    moments: list[MomentErrors] = field(default_factory=list)

    @property
    def order(self) -> float | None:
        """The fitted order; a strong error is fitted only up to REFERENCE_NFE / 15, where the reference's own
        error is small beside it (nearer, it would bend the slope up)."""
        return fitted_order(self.nfes, self.errors, upto=REFERENCE_NFE // 15 if self.stochastic else None)


@dataclass
class AccuracyTable:
    rows: list[SamplerAccuracy]
    n_points: int
    budgets: list[int]  # the NFE budgets measured (two-call samplers use the largest odd NFE within each)
    exact_moments: MomentErrors  # the same measure on exact draws: what "no error" reads as
    seconds: float = 0.0
    complete: bool = True


def ode_endpoint(mix: GaussianMixture, x_T: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE from SIGMA_MAX to SIGMA_MIN, then the denoising step D(x, SIGMA_MIN), as every
    sampler on the Karras grid ends: the exact answer each deterministic sampler approximates. The ODE is
    solved by fourth-order LMS on 2,000 steps, which agrees with 4,000 to an RMS below 1e-7 on every preset (a
    test checks one); the end point is its last D(x), not its own extrapolated last step."""
    last: list[torch.Tensor] = []
    grid = karras_sigmas(ODE_REFERENCE_STEPS, SIGMA_MIN, SIGMA_MAX)
    sample(
        "lms",
        mix.denoise,
        x_T.clone(),
        grid,
        callback=lambda step: last.append(step.denoised) if step.sigma_next == 0 else None,
    )
    return last[0]


def accuracy(
    mix: GaussianMixture,
    n_points: int = 2000,
    seed: int = 0,
    samplers: Sequence[str] | None = None,
    nfes: Sequence[int] = NFE_GRID,
    on_row: Callable[[AccuracyTable], None] | None = None,
) -> AccuracyTable:
    """Every sampler of `samplers` (INTEGRATORS by default; default options) at every NFE in `nfes` from the same
    start; see the module docstring.
    `on_row` sees the table after each sampler (a page redraws it there, and a Stop keeps the rows done)."""
    if not 10 <= n_points <= MAX_ACCURACY_POINTS:
        raise BadInputError(f"Measure with 10 to {MAX_ACCURACY_POINTS:,} points.")
    if not nfes or min(nfes) < 1 or max(nfes) > 1000:
        raise BadInputError("The NFE values must lie between 1 and 1,000.")
    with torch_threads(1):  # many small ops: one thread is faster, and in a server thread far faster
        return _accuracy(mix, n_points, seed, list(samplers or INTEGRATORS), nfes, on_row)


def _accuracy(
    mix: GaussianMixture,
    n_points: int,
    seed: int,
    names: list[str],
    nfes: Sequence[int],
    on_row: Callable[[AccuracyTable], None] | None,
) -> AccuracyTable:
    tic = time.perf_counter()
    x_T = start_points(n_points, seed)
    exact, _ = mix.sample(n_points, torch.Generator().manual_seed(seed + 1))
    budgets = sorted(set(nfes))
    table = AccuracyTable(
        rows=[], n_points=n_points, budgets=budgets, exact_moments=moment_errors(mix, exact), complete=False
    )
    target = None
    for name in names:
        spec = SAMPLERS[name]
        stochastic = spec.injects_noise()
        row = SamplerAccuracy(name=name, title=spec.title, theory=spec.order, stochastic=stochastic)
        if stochastic:
            noise = BrownianNoise(x_T.shape, torch.Generator().manual_seed(seed + 2))
            fine = karras_sigmas(steps_for(spec, REFERENCE_NFE), SIGMA_MIN, SIGMA_MAX)
            reference = sample(name, mix.denoise, x_T.clone(), fine, generator=noise)
        else:
            noise = None
            if target is None:
                target = ode_endpoint(mix, x_T)
            reference = target
        for nfe in budgets:
            steps = steps_for(spec, nfe)
            out = sample(name, mix.denoise, x_T.clone(), karras_sigmas(steps, SIGMA_MIN, SIGMA_MAX), generator=noise)
            row.nfes.append(spec.nfe(steps))
            row.errors.append(rms_distance(out, reference))
            row.moments.append(moment_errors(mix, out))
        table.rows.append(row)
        table.seconds = time.perf_counter() - tic
        if on_row is not None:
            on_row(table)
    table.complete = True
    return table
