r"""The exact flow map of a Gaussian mixture: where the probability-flow ODE carries a point between two times of
flow matching's path x_t = (1 - t) x_0 + t eps (core/diffusion/flow.py), the answer every few-step and one-step
model (consistency models, MeanFlow, shortcut and distilled models) is trying to learn.

On that path the PF-ODE is dx/dt = v(x, t) with v the exact velocity E[eps - x_0 | x_t = x]
(`flow.mixture_velocity`); the flow map Phi_{t -> s}(x) is its solution at time s from x at time t (s = 0 is data,
t = 1 noise; either direction). It is integrated here with Dormand and Prince's 5(4) pair (the stepper shared with
the likelihood ODE, `likelihood.dormand_prince_step`), every point with its own step in t, in float64, to a stated
tolerance: a step is kept when its local error estimate |x5 - x4| is at most tol |h|, so the estimates of a point's
kept steps sum to at most tol |s - t| (in the units of x), and the next step is
h * clip(0.9 (tol |h| / err)^(1/4), 0.2, 5) (err / h falls as h^4).

What is built on it:
- the ideal consistency function f(x, t) = Phi_{t -> 0}(x) (Song et al. 2023, "Consistency models"): constant along
  every ODE path, f(Phi_{t -> t'}(x), t') = f(x, t), and f(., 1) pushes N(0, I) onto the mixture;
- the exact MeanFlow average velocity (Geng et al. 2025, "Mean flows for one-step generative modeling"),
    u(z, r, t) = (z - z_r) / (t - r) = 1 / (t - r) int_r^t v(z_tau, tau) dtau,    z_r = Phi_{t -> r}(z),
  so that z_r = z - (t - r) u(z, r, t); u(z, t, t) = v(z, t), and differentiating (t - r) u = z_t - z_r along the
  path gives MeanFlow's identity u = v - (t - r) (v . grad_z u + d_t u). The displacement z_r - z is summed step by
  step (never z_r - z by subtraction), so u's error stays about tol even when r is close to t;
- `error_field`: how far a learned one-step map g(x, t) -> x_0 is from f over a grid of the plane at one time t.

Components must be isotropic (a std per component), as `mixture_velocity` is written; the toy lab's are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.diffusion.flow import mixture_velocity
from core.diffusion.likelihood import dormand_prince_step
from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError

TOLERANCE = 1e-8  # the default: the local error estimates of a map from t to s sum to at most this times |s - t|
PROGRESS = 1000  # `on_step` reports thousandths of the way
MAX_STEPS = 20_000  # per point; a map that needs more raises (a tolerance too tight for float64)
FIRST_STEP, MAX_STEP = 0.01, 0.25  # in t
MAX_FIELD_SIDE = 128  # the error field's grid is at most this many points a side (16k exact maps)
_SAFETY, _SHRINK, _GROW = 0.9, 0.2, 5.0

OneStepMap = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # g(x_t [B, D], t [B]) -> x_0 [B, D]


def isotropic_stds(mixture: GaussianMixture) -> torch.Tensor:
    """The std of each component [K]; a BadInputError if some component has different stds along its axes."""
    stds = mixture.stds
    if not bool((stds == stds[:, :1]).all()):
        raise BadInputError("The exact flow map is for mixtures whose components have one std each (isotropic).")
    return stds[:, 0]


def velocity(mixture: GaussianMixture) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """v(x [B, D], t [B]) -> [B, D]: the mixture's exact velocity on the flow path (`flow.mixture_velocity`)."""
    stds = isotropic_stds(mixture)
    return lambda x, t: mixture_velocity(mixture.means, stds, mixture.weights, x, t)


def marginal(mixture: GaussianMixture, t: float) -> GaussianMixture:
    """The law of x_t = (1 - t) x_0 + t eps: component k becomes N((1 - t) mu_k, ((1 - t)^2 s_k^2 + t^2) I)."""
    _check_time(torch.tensor([t], dtype=torch.float64))
    a = 1 - t
    return GaussianMixture(a * mixture.means, (a * a * mixture.stds**2 + t * t).sqrt(), mixture.weights)


@dataclass(frozen=True)
class FlowMap:
    """What `solve_flow_map` found, per point."""

    points: torch.Tensor  # Phi_{t -> s}(x) [B, D]
    displacement: torch.Tensor  # Phi_{t -> s}(x) - x [B, D], summed over the steps
    error: torch.Tensor  # [B] the sum of the kept steps' local error estimates (at most tol |s - t|)
    steps: torch.Tensor  # [B] steps tried (kept and rejected), six velocity calls each


def _check_time(t: torch.Tensor) -> None:
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise BadInputError("Times on the flow path lie in [0, 1] (0 is data, 1 is noise).")


def _times(value: float | torch.Tensor, n: int) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).cpu().reshape(-1)
    if len(t) not in (1, n):
        raise BadInputError("Give one time, or one per point.")
    _check_time(t)
    return t.expand(n).clone()


def solve_flow_map(
    mixture: GaussianMixture,
    x: torch.Tensor,
    t: float | torch.Tensor,
    s: float | torch.Tensor,
    tol: float = TOLERANCE,
    on_step: Callable[[int, int], None] | None = None,
) -> FlowMap:
    """Carry points x [B, D] (x_t of the flow path) from time t to time s (each a number or one per point [B]) along
    the mixture's PF-ODE, adaptively as the module says. Points are stepped together, each with its own step; those
    that arrive leave the batch. `on_step(done, 1000)` after each pass where it changed: the thousandths of the way
    from t to s covered, averaged over the points (a page's progress, and where its Stop lands)."""
    if x.ndim != 2 or x.shape[1] != mixture.dim:
        raise BadInputError(f"The flow map takes points of shape [n, {mixture.dim}].")
    if not (math.isfinite(tol) and 1e-13 <= tol <= 1.0):
        raise BadInputError("The flow map's tolerance must lie in [1e-13, 1].")
    field = velocity(mixture)
    y0 = x.detach().to(torch.float64).cpu()
    n = len(y0)
    start, end = _times(t, n), _times(s, n)
    tau, disp = start.clone(), torch.zeros_like(y0)
    direction = torch.sign(end - start)
    h = direction * torch.clamp((end - start).abs(), max=FIRST_STEP)
    error, steps = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.long)
    active = torch.nonzero(end != start)[:, 0]
    first, reported = torch.zeros_like(y0), -1
    span = (end - start).abs().clamp(min=1e-300)
    if len(active):
        first[active] = field(y0[active], tau[active])
    while len(active):
        if int(steps[active].max()) >= MAX_STEPS:
            raise BadInputError(
                f"The exact flow map did not reach its tolerance {tol:g} within {MAX_STEPS:,} steps; loosen it."
            )
        h_a, tau_a = h[active], tau[active]
        finishing = h_a.abs() >= (end[active] - tau_a).abs()
        step, miss, last = dormand_prince_step(
            lambda at, y: field(y, at), tau_a, h_a, y0[active] + disp[active], first[active]
        )
        steps[active] += 1
        err = miss.norm(dim=1)
        allowed = tol * h_a.abs()
        accept = err <= allowed
        factor = (_SAFETY * (allowed / err.clamp(min=1e-300)) ** 0.25).clamp(_SHRINK, _GROW)
        factor = torch.where(accept, factor, factor.clamp(max=1.0))
        kept = active[accept]
        tau[kept] = torch.where(finishing[accept], end[kept], tau_a[accept] + h_a[accept])
        disp[kept] += step[accept]
        first[kept] = last[accept]
        error[kept] += err[accept]
        active = active[~(accept & finishing)]
        remaining = (end[active] - tau[active]).abs()
        grown = (h[active] * factor[~(accept & finishing)]).abs().clamp(max=MAX_STEP)
        h[active] = direction[active] * torch.minimum(grown, remaining)
        if on_step is not None and (done := int(PROGRESS * float(((tau - start).abs() / span).mean()))) != reported:
            reported = done
            on_step(done, PROGRESS)
    return FlowMap(points=y0 + disp, displacement=disp, error=error, steps=steps)


def exact_flow_map(
    mixture: GaussianMixture,
    x: torch.Tensor,
    t: float | torch.Tensor,
    s: float | torch.Tensor,
    tol: float = TOLERANCE,
) -> torch.Tensor:
    """Phi_{t -> s}(x) [B, D] (float64): x_t carried by the mixture's PF-ODE from time t to time s."""
    return solve_flow_map(mixture, x, t, s, tol).points


def consistency_function(
    mixture: GaussianMixture, x: torch.Tensor, t: float | torch.Tensor, tol: float = TOLERANCE
) -> torch.Tensor:
    """The ideal consistency function f(x, t) = Phi_{t -> 0}(x): the data point at the end of x's ODE path."""
    return exact_flow_map(mixture, x, t, 0.0, tol)


def average_velocity(
    mixture: GaussianMixture,
    z: torch.Tensor,
    r: float | torch.Tensor,
    t: float | torch.Tensor,
    tol: float = TOLERANCE,
) -> torch.Tensor:
    """MeanFlow's exact average velocity u(z, r, t) = (z - Phi_{t -> r}(z)) / (t - r) [B, D] for z = z_t [B, D]
    (r, t a number or one per point); where r = t it is the velocity v(z, t) itself."""
    n = len(z)
    rr, tt = _times(r, n), _times(t, n)
    same = rr == tt
    u = torch.empty(z.shape, dtype=torch.float64)
    if bool(same.any()):
        u[same] = velocity(mixture)(z[same].to(torch.float64).cpu(), tt[same])
    if not bool(same.all()):
        moved = ~same
        sol = solve_flow_map(mixture, z[moved], tt[moved], rr[moved], tol)
        u[moved] = sol.displacement / (rr[moved] - tt[moved])[:, None]
    return u


@dataclass(frozen=True)
class ErrorField:
    """A one-step map's error against the ideal consistency function over a grid of the plane at time t."""

    t: float
    xs: torch.Tensor  # [nx] the grid's abscissae
    ys: torch.Tensor  # [ny] its ordinates
    points: torch.Tensor  # [ny * nx, 2] the grid's points x_t, row by row (y outer)
    error: torch.Tensor  # [ny, nx] |g(x, t) - f(x, t)|
    density: torch.Tensor  # [ny, nx] p_t(x), the law of x_t there
    mean: float  # the plain mean of the error over the grid
    weighted_mean: float  # its mean weighted by p_t: the error where the points at time t actually are


def error_field(
    mixture: GaussianMixture,
    g: OneStepMap,
    t: float,
    box: tuple[float, float, float, float],
    resolution: int = 64,
    tol: float = 1e-7,
    on_step: Callable[[int, int], None] | None = None,
) -> ErrorField:
    """|g(x, t) - f(x, t)| on a resolution x resolution grid over box = (x_min, x_max, y_min, y_max) of the plane
    of x_t at time t in (0, 1], for a 2-D mixture and any one-step map g(x [B, 2], t [B]) -> x_0 [B, 2] (float64
    in, anything out). f is `consistency_function` to tolerance tol; the density is the marginal's (`marginal`);
    `on_step` follows the exact maps (`solve_flow_map`)."""
    if mixture.dim != 2:
        raise BadInputError("The error field is drawn over a plane: the mixture must be 2-D.")
    if not 0 < t <= 1:
        raise BadInputError("The error field's time must lie in (0, 1].")
    x_min, x_max, y_min, y_max = (float(v) for v in box)
    if not (x_min < x_max and y_min < y_max and all(map(math.isfinite, box))):
        raise BadInputError("The error field's box must be finite, with its minima below its maxima.")
    if not 2 <= resolution <= MAX_FIELD_SIDE:
        raise BadInputError(f"The error field's grid has 2 to {MAX_FIELD_SIDE} points a side.")
    xs = torch.linspace(x_min, x_max, resolution, dtype=torch.float64)
    ys = torch.linspace(y_min, y_max, resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    times = torch.full((len(points),), float(t), dtype=torch.float64)
    exact = solve_flow_map(mixture, points, t, 0.0, tol, on_step).points
    learned = torch.as_tensor(g(points.clone(), times.clone())).detach().to(torch.float64).cpu()
    if learned.shape != exact.shape:
        raise BadInputError(f"The one-step map must return points of shape {tuple(exact.shape)}.")
    err = (learned - exact).norm(dim=1)
    dens = marginal(mixture, t).log_prob(points).exp()
    return ErrorField(
        t=float(t),
        xs=xs,
        ys=ys,
        points=points,
        error=err.reshape(resolution, resolution),
        density=dens.reshape(resolution, resolution),
        mean=float(err.mean()),
        weighted_mean=float((err * dens).sum() / dens.sum().clamp(min=1e-300)),
    )
