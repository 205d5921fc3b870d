r"""Couplings for flow matching: which noise each data point of a minibatch is paired with before the straight
path x_t = (1 - t) x_0 + t eps is drawn between them (core/diffusion/flow.py).

- `independent`: the pairs as drawn, the product coupling of plain flow matching (Lipman et al. 2023).
- `minibatch_ot`: the permutation that minimises the summed squared distance sum_i |x0_i - eps_sigma(i)|^2, found
  exactly by the Hungarian method (scipy's linear_sum_assignment): OT-CFM (Tong et al. 2024, "Improving and
  generalizing flow-based generative models with minibatch optimal transport"; Pooladian et al. 2023, "Multisample
  flow matching"). Straighter, less crossing paths, which few-step samplers follow better.
- `sinkhorn`: entropic OT (Cuturi 2013), the plan P = argmin <C, P> - reg H(P) with uniform marginals, by
  Sinkhorn's iterations in the log domain (`sinkhorn_plan`), then each x0_i paired with an eps_j drawn from its row
  P_ij / sum_j P_ij (as Tong et al. sample their plans). reg is given relative to the median squared cost; it
  interpolates between the independent coupling (reg -> infinity) and exact OT (reg -> 0).

Measures the page shows: `transport_cost` (the mean squared length of the pairs' paths) and `crossings` (the share
of pairs of straight paths whose segments cross). Exact OT pairs cross far less often than independent ones, but
not never: the squared cost forbids two straight paths meeting at the same time (below), not crossing as sets.
x_1 = (0, 0) -> y_1 = (10, 0) and x_2 = (5, -1) -> y_2 = (14, 1) is the optimal pairing of these points (cost
185 against 223 swapped) and its segments cross, the first path passing (9.5, 0) at t = 0.95, the second at 0.5.
What optimality does guarantee is cyclical monotonicity: for every two pairs,
    |x_i - y_i|^2 + |x_j - y_j|^2 <= |x_i - y_j|^2 + |x_j - y_i|^2,  i.e.  <x_i - x_j, y_i - y_j> >= 0,
and if (1 - t) x_i + t y_i = (1 - t) x_j + t y_j for some t in (0, 1) then y_i - y_j = -(1 - t) / t (x_i - x_j),
which makes that inner product negative: OT paths never meet at the same time.

`minibatch_ot_study`: on a Gaussian -> Gaussian problem, how close the minibatch OT pairing comes to the closed-form
OT map (core/diffusion/gaussian_ot.py) as the batch grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.diffusion.gaussian_ot import Gaussian, ot_map
from core.errors import BadInputError

COUPLINGS = ("independent", "minibatch_ot", "sinkhorn")
MAX_BATCH = 4096  # the cost matrix is batch^2 numbers; the assignment is cubic in the batch
MAX_CROSSING_PATHS = 300  # `crossings` looks at pairs of at most this many paths (45k pairs)
SINKHORN_TOLERANCE = 1e-9  # the largest relative error of a row sum of the plan when Sinkhorn stops
SINKHORN_ITERATIONS = 1000  # at the regularisation asked for (then the plan is rounded onto its marginals)
SINKHORN_STAGE_ITERATIONS = 50  # at each larger one on the way down (epsilon scaling)
COST_BLOCK = 2**22  # differences held at once while a cost matrix is made (32 MB of float64)


def _check(x0: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x0.ndim != 2 or eps.shape != x0.shape or len(x0) < 1:
        raise BadInputError("A coupling needs data and noise batches of the same shape [n, d].")
    if len(x0) > MAX_BATCH:
        raise BadInputError(f"A coupling's minibatch holds at most {MAX_BATCH:,} pairs.")
    return x0, eps


def squared_costs(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """C_ij = |x0_i - eps_j|^2 [n, m], float64 on the CPU, from the differences themselves (not |a|^2 + |b|^2 - 2ab,
    which cancels), a block of rows at a time so that at most COST_BLOCK differences are held at once."""
    a, b = x0.double().cpu().reshape(len(x0), -1), eps.double().cpu().reshape(len(eps), -1)
    rows = max(1, COST_BLOCK // max(1, b.numel()))
    return torch.cat([((a[i : i + rows, None, :] - b[None]) ** 2).sum(-1) for i in range(0, len(a), rows)])


def independent(x0: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs as drawn (x0_i, eps_i)."""
    return _check(x0, eps)


def ot_assignment(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The permutation sigma [n] minimising sum_i |x0_i - eps_sigma(i)|^2 (exact: Hungarian method)."""
    from scipy.optimize import linear_sum_assignment  # scipy with the work that needs it: not at a page's import

    _check(x0, eps)
    rows, cols = linear_sum_assignment(squared_costs(x0, eps).cpu().numpy())
    perm = torch.empty(len(x0), dtype=torch.long)
    perm[torch.as_tensor(rows, dtype=torch.long)] = torch.as_tensor(cols, dtype=torch.long)
    return perm.to(eps.device)


def minibatch_ot(x0: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_i, eps_sigma(i)) with sigma the exact OT assignment of the minibatch (`ot_assignment`)."""
    return x0, eps[ot_assignment(x0, eps)]


def sinkhorn_plan(
    cost: torch.Tensor,
    reg: float,
    tolerance: float = SINKHORN_TOLERANCE,
    max_iterations: int = SINKHORN_ITERATIONS,
) -> torch.Tensor:
    r"""The entropic OT plan P [n, m] between uniform weights a = 1/n, b = 1/m for the cost C [n, m] and absolute
    regularisation reg > 0 (Cuturi 2013): P_ij = exp((f_i + g_j - C_ij) / reg) with the potentials from Sinkhorn's
    iterations in the log domain (stable for any small reg: nothing is exponentiated but the plan itself),
        f_i = reg log a_i - reg logsumexp_j ((g_j - C_ij) / reg),
        g_j = reg log b_j - reg logsumexp_i ((f_i - C_ij) / reg).
    They start at a reg as large as the spread of the costs and halve it towards the one asked for, each stage
    starting from the last one's potentials (epsilon scaling, Schmitzer 2019), and stop when every row sums to a_i
    within the relative `tolerance` (the columns sum to b after each g update), or after `max_iterations` at the last
    reg. Far below the median cost Sinkhorn converges slowly (Franklin and Lorenz 1989 bound its rate per iteration by
    tanh(range C / (2 reg))^2, which tends to 1), so the plan is then put onto the transport polytope by Altschuler,
    Weed and Rigollet's rounding (2017, "Near-linear time approximation algorithms for optimal transport via Sinkhorn
    iteration", algorithm 2): rows and then columns scaled down to at most their marginals, and the deficits (r, c)
    added back as r c^T / |r|_1. The marginals are then exact to rounding error, and the plan moves by at most twice
    the L1 error of the marginals it had."""
    c = cost.double().cpu()
    if c.ndim != 2 or min(c.shape) < 1 or not bool(c.isfinite().all()) or not reg > 0:
        raise BadInputError("Sinkhorn needs a finite cost matrix and a positive regularisation.")
    n, m = c.shape
    log_a, log_b = -math.log(n), -math.log(m)
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    top = max(float(c.max() - c.min()), reg)
    stages = [top / 2**k for k in range(int(math.log2(top / reg)) + 1) if top / 2**k > reg] + [reg]
    for stage, r in enumerate(stages):
        last = stage == len(stages) - 1
        for k in range(max_iterations if last else SINKHORN_STAGE_ITERATIONS):
            update = r * log_a - r * torch.logsumexp((g[None, :] - c) / r, dim=1)
            # The rows of the plan (f, g) sum to a_i exp((f_i - update_i) / r): the check costs nothing.
            done = k > 0 and float((f - update).abs().max()) / r < tolerance
            f = update
            if done:
                break
            g = r * log_b - r * torch.logsumexp((f[:, None] - c) / r, dim=0)
    return _rounded(torch.exp((f[:, None] + g[None, :] - c) / reg))


def _rounded(plan: torch.Tensor) -> torch.Tensor:
    """The plan [n, m] put onto the polytope of uniform marginals (Altschuler et al. 2017, algorithm 2)."""
    n, m = plan.shape
    a, b = 1 / n, 1 / m
    plan = plan * (a / plan.sum(1, keepdim=True).clamp(min=1e-300)).clamp(max=1.0)
    plan = plan * (b / plan.sum(0, keepdim=True).clamp(min=1e-300)).clamp(max=1.0)
    short_r, short_c = (a - plan.sum(1)).clamp(min=0), (b - plan.sum(0)).clamp(min=0)
    missing = float(short_r.sum())
    if missing > 0:
        plan = plan + short_r[:, None] * short_c[None, :] / missing
    return plan


def sinkhorn(
    x0: torch.Tensor, eps: torch.Tensor, reg: float = 0.05, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_i, eps_j(i)) with j(i) drawn from row i of the entropic plan (`sinkhorn_plan`) for squared costs, at
    regularisation reg times the median squared cost. Noise points may repeat (or be left out): a draw from the
    plan, not a permutation; as reg falls the plan tends to the exact OT assignment, and so does the draw."""
    _check(x0, eps)
    if not (math.isfinite(reg) and reg > 0):
        raise BadInputError("The Sinkhorn regularisation must be a positive number.")
    cost = squared_costs(x0, eps)
    plan = sinkhorn_plan(cost, reg * max(float(cost.median()), 1e-300))
    pick = torch.multinomial(plan / plan.sum(1, keepdim=True), 1, generator=generator)[:, 0]
    return x0, eps[pick.to(eps.device)]


def couple(
    kind: str,
    x0: torch.Tensor,
    eps: torch.Tensor,
    *,
    reg: float = 0.05,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs of `kind` (one of COUPLINGS) for a minibatch: what a flow-matching trainer calls per batch."""
    if kind == "independent":
        return independent(x0, eps)
    if kind == "minibatch_ot":
        return minibatch_ot(x0, eps)
    if kind == "sinkhorn":
        return sinkhorn(x0, eps, reg, generator)
    raise BadInputError(f"Unknown coupling {kind!r}; choose one of {', '.join(COUPLINGS)}.")


def transport_cost(x0: torch.Tensor, eps: torch.Tensor) -> float:
    """The mean squared length of the pairs' straight paths, mean_i |x0_i - eps_i|^2."""
    _check(x0, eps)
    return float((x0.double() - eps.double()).pow(2).sum(1).mean())


def crossings(
    x0: torch.Tensor, eps: torch.Tensor, max_paths: int = MAX_CROSSING_PATHS, generator: torch.Generator | None = None
) -> float:
    """The share of pairs of straight paths (segments x0_i -> eps_i, 2-D) that cross, over at most `max_paths`
    paths (a subsample drawn with `generator`), all their m (m - 1) / 2 pairs at once. Segments [p, p'] and [q, q']
    cross properly when q and q' lie strictly on opposite sides of the line through p, p' and p, p' on opposite
    sides of the line through q, q' (the signs of the cross products); touching and collinear overlaps, which have
    probability zero for drawn points, are not counted."""
    _check(x0, eps)
    if x0.shape[1] != 2:
        raise BadInputError("Crossings are counted for 2-D paths.")
    if not 2 <= max_paths <= 2000:
        raise BadInputError("Crossings are counted over 2 to 2,000 paths.")
    n = len(x0)
    if n < 2:
        return 0.0
    keep = torch.randperm(n, generator=generator)[:max_paths] if n > max_paths else torch.arange(n)
    p, q = x0.double().cpu()[keep], eps.double().cpu()[keep]
    d = q - p  # [m, 2]

    def side(origin: torch.Tensor, direction: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        """sign of direction_i x (point_j - origin_i) [m, m]."""
        rel = point[None, :, :] - origin[:, None, :]
        return torch.sign(direction[:, None, 0] * rel[..., 1] - direction[:, None, 1] * rel[..., 0])

    apart_ij = side(p, d, p) * side(p, d, q) < 0  # path j's ends on opposite sides of path i's line
    crossed = apart_ij & apart_ij.T
    m = len(p)
    return float(crossed.triu(1).sum()) / (m * (m - 1) / 2)


@dataclass(frozen=True)
class StudyRow:
    """One batch size of `minibatch_ot_study`."""

    batch: int
    pair_error: float  # RMS over the pairs of |eps_sigma(i) - T(x0_i)|
    mean_map_error: float  # RMS over the points of |g(x0_i) - T(x0_i)|, g the least-squares affine fit of the pairs
    cost: float  # the pairs' mean squared cost (W2^2 is its limit)


def minibatch_ot_study(
    source: Gaussian,
    target: Gaussian,
    sizes: Sequence[int] = (16, 64, 256, 1024),
    points: int = 1024,
    seed: int = 0,
) -> list[StudyRow]:
    """How minibatch OT approaches the exact OT map T between two Gaussians (`gaussian_ot.ot_map`) as its batch
    grows: for each size n, `points` draws of each law are split into batches of n (points // n of them, at least
    one), each batch paired by `ot_assignment`, and the pairs (x_i, y_sigma(i)) are measured against T: per pair
    (how far each noise point's partner is from T's image) and as a mean map (the affine least-squares regression of
    y on x over every pair: the conditional mean E[y | x] a flow model trained on these pairs would learn, to first
    order). At n = 1 both are the independent coupling's; both fall to 0 as n grows, the per-pair error slowly (the
    empirical OT map's rate in d dimensions)."""
    if source.dim != target.dim:
        raise BadInputError("Both Gaussians must have the same dimension.")
    if not sizes or any(not 1 <= n <= MAX_BATCH for n in sizes) or not 1 <= points <= 16 * MAX_BATCH:
        raise BadInputError(f"Batch sizes must lie in 1-{MAX_BATCH:,} and the points in 1-{16 * MAX_BATCH:,}.")
    exact = ot_map(source, target)
    rows = []
    for size in sizes:
        g = torch.Generator().manual_seed(seed)
        batches = max(1, points // size)
        xs, ys = [], []
        for _ in range(batches):
            x, y = source.sample(size, g), target.sample(size, g)
            xs.append(x)
            ys.append(y[ot_assignment(x, y)])
        x, y = torch.cat(xs), torch.cat(ys)
        image = exact(x)
        design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
        fitted = design @ torch.linalg.lstsq(design, y).solution
        rows.append(
            StudyRow(
                batch=size,
                pair_error=float((y - image).pow(2).sum(1).mean().sqrt()),
                mean_map_error=float((fitted - image).pow(2).sum(1).mean().sqrt()),
                cost=float((x - y).pow(2).sum(1).mean()),
            )
        )
    return rows
