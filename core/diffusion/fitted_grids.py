"""Step grids fitted to a denoiser: each minimises a measure of the sampling error for one model.

- `ays_grid` (Sabour, Fidler & Kreis 2024, "Align Your Steps"): the grid that minimises an upper bound on the
  KL divergence between the exact reverse SDE and the one whose denoiser is held fixed over each step,
      KLUB = sum_i int_{sigma_(i+1)}^{sigma_i} E |D(x_t, t) - D(x_(sigma_i), sigma_i)|^2 / t^3 dt,
  with x_t = x_0 + t eps and x_(sigma_i) = x_0 + sigma_i eps on one forward path (x_0 from the data, eps shared),
  estimated by Monte Carlo; the grid is the exact minimum of that estimate over a fine lattice of sigmas, found
  by dynamic programming. On Gaussian data the expectation is known in closed form (`gaussian_costs`), which
  checks the estimator and the search.
- `gits_grid` (Chen et al. 2024, "On the Trajectory Regularity of ODE-based Diffusion Sampling"): run a teacher
  on a fine grid from a warm-up batch, cost every jump between two of its points by how far one Euler step
  along the teacher's own slope lands from the teacher's state, and pick the n-point path of least total cost
  by dynamic programming.
- `optimise_grid`: a direct search for the grid that minimises a given error (the distance of a named sampler's
  end points to the exact ODE end point, or to a fine teacher run): coordinate descent over the interior
  points in log sigma, ends held.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from core.diffusion.grids import check_range, log_snr_sigmas
from core.diffusion.samplers import Step, sample

Denoiser = Callable[..., torch.Tensor]
GITS_FINE_STEPS = 120  # the teacher's grid (log-SNR uniform): 0.088 apart in log sigma over 0.002-80
GITS_TEACHER = "heun"
AYS_LEVELS = 400  # the lattice AYS picks its points from: 0.027 apart in log sigma over 0.002-80
OPTIMISE_SWEEPS = 3
OPTIMISE_CANDIDATES = 8
SETTLED = 1e-3  # a sweep that moved no point by more than this (in log sigma) ends the descent
AYS_BATCH = 1 << 15  # rows per denoiser call while tabulating D for the KLUB
REFINEMENTS = 2  # searches around the best candidate, each 2 / candidates as wide as the one before


def ays_costs(denoiser: Denoiser, x0: torch.Tensor, eps: torch.Tensor, levels: torch.Tensor) -> np.ndarray:
    """The KLUB of every step between two of `levels` (decreasing sigmas, evenly spaced in log sigma), per
    dimension: cost[k, j] (k < j) = int from levels[j] to levels[k] of E |D(x_t, t) - D(x_k, levels[k])|^2 / t^3 dt.

    D is evaluated once per level on the Monte Carlo pairs (x0, eps) [B, ...], x_t = x0 + t eps; with the Gram
    matrix G[m, k] = E <D_m, D_k>, the integral in u = log t (dt / t^3 = exp(-2u) du) is summed piece by piece
    between neighbouring levels, D taken linear in u across each piece (so a step one level long, where the
    integrand grows from 0 like the square of the distance, is not overcounted as the summed rule would).
    Infinite where j <= k."""
    b = len(x0)
    dim = x0[0].numel()
    per_call = max(1, AYS_BATCH // b)
    table = []
    for start in range(0, len(levels), per_call):
        ts = levels[start : start + per_call].to(x0.dtype)
        x = (x0[None] + ts.view(-1, *[1] * x0.ndim) * eps[None]).reshape(-1, *x0.shape[1:])
        table.append(denoiser(x, ts.repeat_interleave(b)).reshape(len(ts), b * dim).to(torch.float64))
    d = torch.cat(table)  # [M, B * dim]
    gram = (d @ d.T).numpy() / (b * dim)
    u = np.log(levels.numpy())
    du = abs(float(u[1] - u[0])) if len(u) > 1 else 0.0
    diag = np.diag(gram)
    gap = diag[None, :] - 2 * gram + diag[:, None]  # gap[k, m] = E |D_m - D_k|^2
    # E <D_m - D_k, D_(m+1) - D_k>, then each piece [m, m+1] with D linear in u across it: the mean of
    # |(1 - a) e_m + a e_(m+1)|^2 over a in [0, 1] is (|e_m|^2 + <e_m, e_(m+1)> + |e_(m+1)|^2) / 3
    cross = np.diag(gram, 1)[None, :] - gram[:, :-1] - gram[:, 1:] + diag[:, None]
    weight = np.exp(-(u[:-1] + u[1:]))  # exp(-2u) at each piece's middle
    pieces = (gap[:, :-1] + cross + gap[:, 1:]) / 3 * weight[None, :] * du
    summed = np.concatenate([np.zeros((len(u), 1)), np.cumsum(pieces, axis=1)], axis=1)
    cost = summed - np.diag(summed)[:, None]  # cost[k, j] = sum of the summeds from m = k to m = j
    cost[np.tril_indices(len(u))] = np.inf
    return cost


def gaussian_costs(var: float, levels: torch.Tensor, nodes: int = 64) -> np.ndarray:
    """The same costs exactly, per dimension, for data N(0, var I): D(x, t) = a(t) x with a = var / (var + t^2), so
    E |a(t)(x0 + t eps) - a(s)(x0 + s eps)|^2 = (a(t) - a(s))^2 var + (a(t) t - a(s) s)^2 for a step held at s,
    integrated by `nodes`-point Gauss-Legendre in log t on every step (converged to round-off)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    sig = levels.numpy()
    k, j = np.triu_indices(len(sig), 1)
    lo, hi = np.log(sig[j])[:, None], np.log(sig[k])[:, None]
    t, top = np.exp(0.5 * (lo + hi) + 0.5 * (hi - lo) * x), np.exp(hi)
    at, ah = var / (var + t**2), var / (var + top**2)
    integrand = ((at - ah) ** 2 * var + (at * t - ah * top) ** 2) / t**2  # / t^3 times dt = t du
    cost = np.full((len(sig), len(sig)), np.inf)
    cost[k, j] = 0.5 * (hi - lo)[:, 0] * (w * integrand).sum(1)
    return cost


def klub(cost: np.ndarray, path: list[int]) -> float:
    """The KLUB of a grid given by its indices among the levels of `cost`."""
    return float(sum(cost[a, b] for a, b in itertools.pairwise(path)))


def ays_lattice(
    denoiser: Denoiser,
    x0: torch.Tensor,
    sigma_min: float,
    sigma_max: float,
    generator: torch.Generator | None = None,
    levels: int = AYS_LEVELS,
) -> tuple[torch.Tensor, np.ndarray]:
    """`levels` log-SNR-uniform sigmas (both ends kept) and the Monte Carlo KLUB of every step between two of them
    (`ays_costs`) over the data batch x0, one noise draw per point: what every step count's AYS grid is chosen
    from."""
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    lattice = log_snr_sigmas(levels, sigma_min, sigma_max)[:-1]
    return lattice, ays_costs(denoiser, x0, eps, lattice)


def ays_grid(
    denoiser: Denoiser,
    x0: torch.Tensor,
    n: int,
    sigma_min: float,
    sigma_max: float,
    generator: torch.Generator | None = None,
    levels: int = AYS_LEVELS,
) -> torch.Tensor:
    """Align Your Steps: the n-step grid (then 0) of least Monte Carlo KLUB on the lattice of `ays_lattice`, by
    dynamic programming: the exact minimum of the estimated bound there, where Sabour et al. refine a grid point
    by point."""
    check_range(n, sigma_min, sigma_max)
    return cheapest_grid(*ays_lattice(denoiser, x0, sigma_min, sigma_max, generator, max(levels, n)), n)


def gits_costs(denoiser: Denoiser, x_T: torch.Tensor, sigmas: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """The teacher's points and the cost of every jump between two of them, for GITS.

    The teacher (GITS_TEACHER on the fine grid `sigmas`, n sigmas then 0) runs from the warm-up batch x_T and
    gives its state x_k and slope d_k = (x_k - D(x_k, sigma_k)) / sigma_k at each fine point; the jump k -> j
    (k < j) costs the mean squared distance of the Euler step x_k + (sigma_j - sigma_k) d_k from x_j. Returns the
    fine sigmas (the final 0 left out) and the [n, n] costs (infinite where j <= k)."""
    states: list[torch.Tensor] = []
    slopes: list[torch.Tensor] = []

    def record(step: Step) -> None:
        states.append(step.x.clone())
        slopes.append(step.eps.clone())

    sample(GITS_TEACHER, denoiser, x_T.clone(), sigmas, callback=record)
    sig = sigmas[:-1].tolist()
    cost = np.full((len(sig), len(sig)), np.inf)
    for k in range(len(sig) - 1):
        for j in range(k + 1, len(sig)):
            cost[k, j] = float((states[k] + (sig[j] - sig[k]) * slopes[k] - states[j]).pow(2).mean())
    return sigmas[:-1], cost


def cheapest_path(cost: np.ndarray, points: int) -> list[int]:
    """The increasing indices 0 = k_1 < ... < k_points = m - 1 of least total cost sum cost[k_i, k_(i+1)], by
    dynamic programming over (how many points so far, where the last one is)."""
    m = len(cost)
    if points == 1 or m == 1:
        return [0]
    best = np.full((points, m), np.inf)  # best[p, j]: least cost of a path whose point p is fine point j
    back = np.zeros((points, m), dtype=int)
    best[0, 0] = 0.0
    for p in range(1, points):
        totals = best[p - 1][:, None] + cost  # [from, to]
        back[p] = totals.argmin(0)
        best[p] = totals.min(0)
    path = [m - 1]
    for p in range(points - 1, 0, -1):
        path.append(int(back[p, path[-1]]))
    return path[::-1]


def cheapest_grid(levels: torch.Tensor, cost: np.ndarray, n: int) -> torch.Tensor:
    """The n of `levels` (decreasing sigmas) on the cheapest path under `cost` (`cheapest_path`), then 0."""
    chosen = levels[cheapest_path(cost, n)]
    return torch.cat([chosen, chosen.new_zeros(1)])


def gits_grid(
    denoiser: Denoiser,
    x_T: torch.Tensor,
    n: int,
    sigma_min: float,
    sigma_max: float,
    fine_steps: int = GITS_FINE_STEPS,
) -> torch.Tensor:
    """GITS: the n-step grid (then 0) whose Euler steps stay closest to the teacher's path from the warm-up batch
    x_T (drawn at sigma_max), chosen among the points of a log-SNR-uniform fine grid (`gits_costs`,
    `cheapest_path`); both ends are kept."""
    check_range(n, sigma_min, sigma_max)
    return cheapest_grid(*gits_costs(denoiser, x_T, log_snr_sigmas(max(fine_steps, n), sigma_min, sigma_max)), n)


def optimise_grid(
    error: Callable[[torch.Tensor], float],
    start: torch.Tensor,
    sweeps: int = OPTIMISE_SWEEPS,
    candidates: int = OPTIMISE_CANDIDATES,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The grid (n sigmas then 0) near `start` with the least `error(grid)`, its ends held: coordinate descent over
    the interior points in log sigma, each trial one call of `error` on a whole grid.

    Each visit of a point tries `candidates` values evenly spaced in log sigma strictly between its neighbours,
    then as many again within one spacing of the best, REFINEMENTS times, each time closer, and keeps the best
    (the current value among them, so no move makes it worse). Stops after `sweeps` sweeps, once no point moved
    by more than SETTLED in log sigma, or when `should_stop()` says so. `progress(done, planned)` hears of each
    point visited (planned: all sweeps')."""
    grid = start.to(torch.float64).clone()  # the final 0 included: trials are whole grids

    def tried(i: int, s: float) -> float:
        trial = grid.clone()
        trial[i] = s
        return error(trial)

    inner = range(1, len(grid) - 2)
    planned, done = sweeps * len(inner), 0
    for _ in range(sweeps):
        moved = 0.0
        for i in inner:
            if should_stop is not None and should_stop():
                return grid
            lo, hi = math.log(float(grid[i + 1])), math.log(float(grid[i - 1]))
            spacing = (hi - lo) / (candidates + 1)
            trial = [float(grid[i])] + [math.exp(lo + spacing * k) for k in range(1, candidates + 1)]
            scores = [tried(i, s) for s in trial]
            for _ in range(REFINEMENTS):  # then ever closer around the best so far
                centre = math.log(trial[int(np.argmin(scores))])
                near = [math.exp(centre + spacing * (2 * k / candidates - 1)) for k in range(candidates + 1)]
                near = [s for s in near if lo + SETTLED < math.log(s) < hi - SETTLED]  # distinct in float32 too
                trial, scores = trial + near, scores + [tried(i, s) for s in near]
                spacing *= 2 / candidates
            pick = trial[int(np.argmin(scores))]
            moved = max(moved, abs(math.log(pick / float(grid[i]))))
            grid[i] = pick
            done += 1
            if progress is not None:
                progress(done, planned)
        if moved <= SETTLED:
            break
    return grid
