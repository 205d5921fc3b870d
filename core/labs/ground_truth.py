"""The Ground truth page's logic: a 2-D Gaussian mixture, whose every quantity is known in closed form,
against what samplers and learned models do.

- Sampler accuracy (`accuracy`): every sampler at NFE 1 to 200 from the same start. Deterministic samplers
  are measured by the RMS distance to the exact probability-flow ODE end point; stochastic ones by their
  strong error, the RMS distance to the same sampler run with `REFERENCE_NFE` evaluations on the SAME Brownian
  path (core/diffusion/brownian.py), whose own noise is zero by construction. Both come with the fitted order
  (the slope of log error against log NFE). `moment_errors` adds the weak view: errors of the component
  masses, means and variances, which are known exactly, with their standard errors.
- Trajectory probe (`probe`): each chosen sampler's path from one point at one noise level, beside the
  exact ODE path, and the exact density at each noise level.
- Likelihood and memorisation: see `core/diffusion/likelihood.py` and the functions at the end.

Everything runs in the mixture's own units on the Karras grid from SIGMA_MAX to SIGMA_MIN (EDM's defaults);
the variance-exploding state x = x_0 + sigma eps is what the samplers move.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import torch

from core.data.toy import MAX_POINTS, MIN_POINTS, PointCloud
from core.device import torch_threads
from core.diffusion.brownian import BrownianNoise
from core.diffusion.denoisers import Denoiser
from core.diffusion.likelihood import ODESettings, log_density
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS, SamplerSpec, Step, sample
from core.diffusion.schedules import karras_sigmas
from core.errors import BadInputError
from core.labs.latent import LatentDiffusion
from core.labs.toy import ToyRun

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
NFE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 200)
REFERENCE_NFE = 1000  # a stochastic sampler's own fine run, on the same Brownian path
ODE_REFERENCE_STEPS = 2000
MAX_ACCURACY_POINTS = 5000
FIT_FROM_NFE = 8  # orders are fitted on NFE >= 8, where the error is in its asymptotic regime


def steps_for(spec: SamplerSpec, nfe: int) -> int:
    """The most steps whose denoiser evaluations fit in `nfe` (at least one step)."""
    return max(1, max((n for n in range(1, nfe + 1) if spec.nfe(n) <= nfe), default=1))


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


def start_points(n: int, seed: int) -> torch.Tensor:
    """The common start: N(0, SIGMA_MAX^2 I) points [n, 2], float64."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * SIGMA_MAX


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
    """Every sampler (default options) at every NFE in `nfes` from the same start; see the module docstring.
    `on_row` sees the table after each sampler (a page redraws it there, and a Stop keeps the rows done)."""
    if not 10 <= n_points <= MAX_ACCURACY_POINTS:
        raise BadInputError(f"Measure with 10 to {MAX_ACCURACY_POINTS:,} points.")
    if not nfes or min(nfes) < 1 or max(nfes) > 1000:
        raise BadInputError("The NFE values must lie between 1 and 1,000.")
    with torch_threads(1):  # many small ops: one thread is faster, and in a server thread far faster
        return _accuracy(mix, n_points, seed, list(samplers or SAMPLERS), nfes, on_row)


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
            row.errors.append(float(((out - reference) ** 2).sum(1).mean().sqrt()))
            row.moments.append(moment_errors(mix, out))
        table.rows.append(row)
        table.seconds = time.perf_counter() - tic
        if on_row is not None:
            on_row(table)
    table.complete = True
    return table


# ---- the mixture a person shapes ---------------------------------------------------------------------------

# Rows (x, y, std, weight); the first is the accuracy bench's mixture.
PRESETS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "Four unequal blobs": ((-3.0, 0.0, 0.5, 0.4), (3.0, 2.0, 0.8, 0.3), (0.0, -4.0, 0.4, 0.2), (2.5, -2.0, 0.3, 0.1)),
    "Ring of eight": tuple(
        (round(3 * math.cos(a), 4), round(3 * math.sin(a), 4), 0.3, 1.0) for a in np.arange(8) * 2 * math.pi / 8
    ),
    "Two close modes": ((-1.0, 0.0, 0.5, 1.0), (1.0, 0.0, 0.5, 1.0)),
    "Unbalanced pair": ((-2.0, 0.0, 0.4, 0.9), (2.0, 0.0, 0.4, 0.1)),
    "One Gaussian": ((0.0, 0.0, 1.0, 1.0),),
}
MAX_FIT_POINTS = 10_000
MAX_FIT_COMPONENTS = 16


MAX_COORD, STD_RANGE, MAX_WEIGHT = 1e4, (1e-3, 1e4), 1e6


def shaped_mixture(rows: Sequence[Sequence[float]], spread: float = 1.0, distance: float = 1.0) -> GaussianMixture:
    """Rows (x, y, std, weight) as a mixture, every std times `spread` and the means moved `distance` times as
    far from their weighted centre. Rows of weight 0 are left out (a way to switch a component off)."""
    t = torch.as_tensor(rows, dtype=torch.float64)
    if t.ndim != 2 or t.shape[1] != 4 or not 1 <= len(t) <= 32 or not bool(t.isfinite().all()):
        raise BadInputError("A mixture needs 1 to 32 rows of four numbers: x, y, std, weight.")
    if not (0 < spread <= 10 and 0 <= distance <= 10):
        raise BadInputError("Spread must lie in (0, 10] and distance in [0, 10].")
    lo, hi = STD_RANGE
    if bool((t[:, :2].abs() > MAX_COORD).any()) or bool(((t[:, 2] < lo) | (t[:, 2] > hi)).any()):
        raise BadInputError(f"Means must lie within ±{MAX_COORD:g} and stds between {lo:g} and {hi:g}.")
    if bool(((t[:, 3] < 0) | (t[:, 3] > MAX_WEIGHT)).any()) or not bool((t[:, 3] > 0).any()):
        raise BadInputError(f"Weights must lie between 0 and {MAX_WEIGHT:g}, and not all be 0.")
    t = t[t[:, 3] > 0]
    means, stds, weights = t[:, :2], t[:, 2] * spread, t[:, 3]
    centre = (weights[:, None] * means).sum(0) / weights.sum()
    return GaussianMixture(centre + distance * (means - centre), stds, weights)


def fit_mixture(points: torch.Tensor, components: int, seed: int = 0) -> GaussianMixture:
    """A mixture of `components` Gaussians with per-axis spreads fitted to 2-D points by EM (scikit-learn's
    GaussianMixture, diagonal covariances), on at most MAX_FIT_POINTS of them."""
    from sklearn.mixture import GaussianMixture as EMFit  # a second's import, only when fitting

    if points.ndim != 2 or points.shape[1] != 2:
        raise BadInputError("A mixture is fitted to 2-D points.")
    if not 1 <= components <= MAX_FIT_COMPONENTS or len(points) < 2 * components:
        raise BadInputError(f"Fit 1 to {MAX_FIT_COMPONENTS} components, with at least two points per component.")
    g = torch.Generator().manual_seed(seed)
    if len(points) > MAX_FIT_POINTS:
        points = points[torch.randperm(len(points), generator=g)[:MAX_FIT_POINTS]]
    fit = EMFit(components, covariance_type="diag", random_state=seed, reg_covar=1e-4, max_iter=300)
    fit.fit(points.double().numpy())
    return GaussianMixture(
        torch.from_numpy(fit.means_), torch.from_numpy(fit.covariances_).sqrt(), torch.from_numpy(fit.weights_)
    )


def mixture_rows(mix: GaussianMixture) -> list[list[float]]:
    """(x, y, std, weight) rows of a mixture (std: the RMS of its per-axis stds), for the page's table."""
    stds = (mix.stds**2).mean(1).sqrt()
    return [[*m.tolist(), float(s), float(w)] for m, s, w in zip(mix.means, stds, mix.weights, strict=True)]


def moments(mix: GaussianMixture) -> tuple[torch.Tensor, float]:
    """The mixture's mean [2] and average per-axis variance (the likelihood ODE's prior)."""
    mean = (mix.weights[:, None] * mix.means).sum(0)
    second = (mix.weights[:, None] * (mix.stds**2 + (mix.means - mean) ** 2)).sum(0)
    return mean, float(second.mean())


def view_box(mix: GaussianMixture, pad: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis bounds that hold every component to `pad` of its stds."""
    lo = (mix.means - pad * mix.stds).min(0).values
    hi = (mix.means + pad * mix.stds).max(0).values
    return lo, hi


def grid(lo: Sequence[float], hi: Sequence[float], size: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A size x size mesh: its x and y axes and its points [size^2, 2] (row-major: y outer, x inner)."""
    if not 2 <= size <= 200:
        raise BadInputError("A density grid has 2 to 200 points a side.")
    xs, ys = np.linspace(lo[0], hi[0], size), np.linspace(lo[1], hi[1], size)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))


# ---- trajectory probe -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePath:
    name: str
    title: str
    sigmas: np.ndarray  # [F] the noise level of each recorded state (the last: 0)
    points: np.ndarray  # [F, 2] the VE state x at that level (the last: the sample)
    nfe: int


MAX_PROBE_STEPS = 100


@dataclass(frozen=True)
class Probe:
    paths: list[ProbePath]  # one per sampler
    exact: ProbePath  # the exact ODE path
    sigmas: np.ndarray  # the shared grid (the frames): sigma_start ... SIGMA_MIN, 0


def probe(
    mix: GaussianMixture,
    start: Sequence[float],
    sigma_start: float,
    samplers: Sequence[str],
    steps: int,
    seed: int = 0,
) -> Probe:
    """Each sampler's path from the point `start` at noise level `sigma_start` on the Karras grid of `steps`
    steps down to SIGMA_MIN (stochastic ones with noise from `seed`), and the exact ODE path (LMS, 1,000 steps).
    EDM records its raised level sigma-hat at each step; the frames follow the shared grid."""
    if not SIGMA_MIN < sigma_start <= SIGMA_MAX or not 1 <= steps <= MAX_PROBE_STEPS:
        raise BadInputError(
            f"Start at a noise level in ({SIGMA_MIN}, {SIGMA_MAX:g}] with 1 to {MAX_PROBE_STEPS} steps."
        )
    x0 = torch.tensor([list(start)], dtype=torch.float64)
    if x0.shape != (1, 2) or not bool(x0.isfinite().all()):
        raise BadInputError("The start must be a finite 2-D point.")

    def run(name: str, n: int, generator: torch.Generator | None) -> ProbePath:
        sigmas, points = [], []

        def record(step: Step) -> None:
            sigmas.append(step.sigma)
            points.append(step.x[0].tolist())

        grid = karras_sigmas(n, SIGMA_MIN, sigma_start)
        out = sample(name, mix.denoise, x0.clone(), grid, generator=generator, callback=record)
        spec = SAMPLERS[name]
        return ProbePath(name, spec.title, np.array([*sigmas, 0.0]), np.array([*points, out[0].tolist()]), spec.nfe(n))

    with torch_threads(1):
        paths = [run(name, steps, torch.Generator().manual_seed(seed)) for name in samplers]
        exact = run("lms", 1000, None)
    return Probe(
        paths=paths,
        exact=ProbePath("exact", "Exact ODE", exact.sigmas, exact.points, exact.nfe),
        sigmas=karras_sigmas(steps, SIGMA_MIN, sigma_start).numpy(),
    )


def start_from_noise(mix: GaussianMixture, sigma: float, seed: int) -> list[float]:
    """One draw from the mixture blurred by `sigma` (a point where a run at that noise level could be)."""
    g = torch.Generator().manual_seed(seed)
    x, _ = mix.sample(1, g)
    return (x[0] + sigma * torch.randn(2, generator=g, dtype=torch.float64)).tolist()


# ---- memorisation ------------------------------------------------------------------------------------------------

MAX_TRAINING_SET = 2000
COPY_RATIO = 1 / 3  # a sample "copies" a training point when it is 3x nearer to it than to the next one


def empirical_denoiser(points: torch.Tensor) -> Denoiser:
    """The optimal denoiser for a finite training set: E[x_0 | x] when x_0 is one of the points, a softmax-weighted
    mean of them (the mixture of point masses; a std of 1e-9 stands for zero). Sampled all the way down, every
    sample lands on a training point: what a network that fitted its training loss perfectly would do."""
    if not 1 <= len(points) <= MAX_TRAINING_SET:
        raise BadInputError(f"The training set must hold 1 to {MAX_TRAINING_SET:,} points.")
    return GaussianMixture(points.double(), 1e-9).denoise


def optimal_samples(points: torch.Tensor, n: int, seed: int = 0, steps: int = 40) -> torch.Tensor:
    """n samples of the optimal denoiser for the training set `points` (Heun, `steps` steps on the Karras grid)."""
    grid = karras_sigmas(steps, SIGMA_MIN, SIGMA_MAX)
    with torch_threads(1):
        return sample("heun", empirical_denoiser(points), start_points(n, seed), grid)


@dataclass(frozen=True)
class Nearness:
    """How near samples are to a training set."""

    nearest: np.ndarray  # [n] distance of each sample to its nearest training point
    copied: float  # the share whose nearest training point is at most COPY_RATIO of the distance to the next

    @property
    def median(self) -> float:
        return float(np.median(self.nearest))


def nearness(samples: torch.Tensor, training: torch.Tensor) -> Nearness:
    """Nearest- and second-nearest-training-point distances of every sample (needs two training points)."""
    if len(training) < 2:
        raise BadInputError("Nearness needs at least two training points.")
    d = torch.cdist(samples.double(), training.double())
    two = d.topk(2, dim=1, largest=False).values
    copied = float((two[:, 0] <= COPY_RATIO * two[:, 1]).double().mean())
    return Nearness(two[:, 0].numpy(), copied)


# ---- a model learnt from the mixture ----------------------------------------------------------------------------


def mixture_cloud(mix: GaussianMixture, n: int, seed: int = 0) -> PointCloud:
    """n training points drawn from the mixture, as the toy lab's data: a `ToyRun` trains on it."""
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise BadInputError(f"Train on {MIN_POINTS} to {MAX_POINTS:,} points.")

    def fresh(m: int, g: torch.Generator) -> torch.Tensor:
        return mix.sample(m, g)[0].float()

    key = json.dumps(["ground-truth", mixture_rows(mix), n, seed])
    return PointCloud(
        points=fresh(n, torch.Generator().manual_seed(seed)), key=key, title="the mixture", fresh=fresh, mixture=mix
    )


def model_log_density(
    run: ToyRun, x: torch.Tensor, steps: int = 32, on_step: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """log p(x) [B] in nats, in the data's own units, of a toy-lab model by the probability-flow ODE over its
    schedule's range of sigma. The model works in standardised units
    y = (x - m) / s, so log p(x) = log p(y) - D log s."""
    settings = ODESettings.for_schedule(run.schedule, steps)
    y = run.standardizer.transform(x.double())
    with torch_threads(run.threads):
        log_py = log_density(run.denoiser(), y, settings, on_step)
    return log_py - x.shape[1] * math.log(run.standardizer.scale)


def exact_log_density(mix: GaussianMixture, x: torch.Tensor, steps: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x) by the ODE with the exact denoiser (sigma 0.002 to 500) and in closed form, both [B]."""
    mean, var = moments(mix)
    settings = ODESettings(
        sigma_min=SIGMA_MIN, sigma_max=500.0, steps=steps, prior_mean=tuple(mean.tolist()), prior_var=var
    )
    with torch_threads(1):
        return log_density(mix.denoise, x.double(), settings), mix.log_prob(x, SIGMA_MIN)


def latent_log_density(
    model: LatentDiffusion, z: torch.Tensor, steps: int = 32, on_step: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """log p(z) [B] in nats of a latent MNIST model's unconditional half (the null label) at VAE latents z [B, 2],
    by the probability-flow ODE; the model works in standardised latents y = (z - m) / s, so
    log p(z) = log p(y) - sum log s."""
    settings = ODESettings.for_schedule(model.schedule, steps)
    y = (z.double() - model.mean.double()) / model.std.double()
    with torch_threads(1):
        log_py = log_density(model.conditioned(None, len(z), 1.0), y, settings, on_step)
    return log_py - float(model.std.double().log().sum())


def density_maps(
    log_densities: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    lo: Sequence[float],
    hi: Sequence[float],
    size: int,
    held_out: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, torch.Tensor]]]:
    """Each log density on a size x size grid over [lo, hi] and at the held-out points, one call each (the
    ODEs run once over both): the grid's axes, and per title the [size, size] map (rows along y) and the
    held-out values [M]."""
    xs, ys, mesh = grid(lo, hi, size)
    points = torch.cat([mesh, held_out.double()])
    found = {}
    for title, log_p in log_densities.items():
        values = log_p(points)
        found[title] = (values[: len(mesh)].reshape(size, size).numpy(), values[len(mesh) :])
    return xs, ys, found
