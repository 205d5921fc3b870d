"""Step grids against the exact answer: for each deterministic sampler and each grid, the RMS distance of its end
points to the exact probability-flow ODE end point (accuracy.ode_endpoint) at each NFE, from the same start
points. The hand-made grids (core/diffusion/grids.py) need nothing but the range; the fitted ones
(core/diffusion/fitted_grids.py) are fitted on a warm-up set drawn apart from the measured points, so that no
grid is judged on the points it was fitted to:

- AYS to WARM_UP exact draws of the mixture (its data), one grid per step count;
- GITS to a Heun teacher from WARM_UP start points, one teacher for every step count;
- the direct search ("optimised") per sampler and step count, against the exact ODE end points of the warm-up
  start points, from the Karras grid; its cost grows with the square of the steps, so it runs up to
  OPTIMISE_UP_TO evaluations.

A typed grid is one grid of its own length: each sampler runs it once, at the NFE that length gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion import fitted_grids
from core.diffusion.grids import HAND_MADE
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS, sample
from core.errors import BadInputError
from core.labs.ground_truth.accuracy import MAX_ACCURACY_POINTS, fitted_order, ode_endpoint, rms_distance, steps_for
from core.labs.ground_truth.noise import SIGMA_MAX, SIGMA_MIN, start_points

GRID_NFES = (3, 4, 5, 6, 8, 10, 12, 16, 24, 32)
GRIDS = {
    "karras": "Karras ρ = 7",
    "log-snr": "uniform in log-SNR",
    "uniform": "uniform in σ (EDM's time)",
    "ays": "Align Your Steps (fitted)",
    "gits": "GITS (fitted)",
    "optimised": "searched for the sampler",
}
FITTED = ("ays", "gits", "optimised")
TYPED = "typed"
WARM_UP = 256  # the points the fitted grids are fitted to
OPTIMISE_UP_TO = 10  # the direct search's largest NFE
DEFAULT_SAMPLERS = ("euler", "heun", "dpmpp_2m", "unipc", "ipndm", "deis")


@dataclass
class GridCurve:
    sampler: str
    grid: str  # a key of GRIDS, or TYPED
    nfes: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    sigmas: list[torch.Tensor] = field(default_factory=list)  # the grid run at each NFE (n sigmas then 0)

    @property
    def order(self) -> float | None:
        """The slope of log error against log NFE over NFE >= 8 (accuracy.fitted_order), None with too few."""
        return fitted_order(self.nfes, self.errors)

    def error_at(self, nfe: int) -> float | None:
        return next((e for n, e in zip(self.nfes, self.errors, strict=True) if n == nfe), None)

    def error_within(self, budget: int) -> float | None:
        """The error at the largest NFE measured within `budget` (a two-call sampler's NFEs are odd), or None."""
        within = [n for n in self.nfes if n <= budget]
        return self.error_at(max(within)) if within else None


@dataclass
class GridStudy:
    curves: list[GridCurve]
    n_points: int
    nfes: list[int]
    seconds: float = 0.0
    complete: bool = False


class _Fitted:
    """The fitted grids, each made once per step count (and sampler, for the search) and kept for the study."""

    def __init__(self, mix: GaussianMixture, seed: int, should_stop: Callable[[], bool] | None) -> None:
        self.mix, self.should_stop = mix, should_stop
        self.data, _ = mix.sample(WARM_UP, torch.Generator().manual_seed(seed + 11))
        self.warm = start_points(WARM_UP, seed + 12)
        self._target: torch.Tensor | None = None
        self._teacher: tuple[torch.Tensor, np.ndarray] | None = None  # GITS's levels and costs
        self._klub: tuple[torch.Tensor, np.ndarray] | None = None  # AYS's
        self.kept: dict[tuple[str, str, int], torch.Tensor] = {}

    def grid(self, kind: str, sampler: str, steps: int) -> torch.Tensor:
        key = (kind, sampler if kind == "optimised" else "", steps)
        if key not in self.kept:
            self.kept[key] = getattr(self, f"_{kind}")(sampler, steps)
        return self.kept[key]

    def _ays(self, sampler: str, steps: int) -> torch.Tensor:
        """`fitted_grids.ays_grid`, its KLUB tabulated once for every step count."""
        if self._klub is None:
            noise = torch.Generator().manual_seed(13)
            self._klub = fitted_grids.ays_lattice(self.mix.denoise, self.data, SIGMA_MIN, SIGMA_MAX, noise)
        return fitted_grids.cheapest_grid(*self._klub, steps)

    def _gits(self, sampler: str, steps: int) -> torch.Tensor:
        if self._teacher is None:
            fine = HAND_MADE["log-snr"](
                fitted_grids.GITS_FINE_STEPS, SIGMA_MIN, SIGMA_MAX
            )  # then 0: the teacher's grid
            self._teacher = fitted_grids.gits_costs(self.mix.denoise, self.warm, fine)
        return fitted_grids.cheapest_grid(*self._teacher, steps)

    def _optimised(self, sampler: str, steps: int) -> torch.Tensor:
        if self._target is None:
            self._target = ode_endpoint(self.mix, self.warm)
        target = self._target

        def error(grid: torch.Tensor) -> float:
            out = sample(sampler, self.mix.denoise, self.warm.clone(), grid)
            return float((out - target).pow(2).sum(1).mean())

        start = HAND_MADE["karras"](steps, SIGMA_MIN, SIGMA_MAX)
        return fitted_grids.optimise_grid(error, start, should_stop=self.should_stop)


def grid_study(
    mix: GaussianMixture,
    samplers: Sequence[str] = DEFAULT_SAMPLERS,
    grids: Sequence[str] = tuple(GRIDS),
    nfes: Sequence[int] = GRID_NFES,
    n_points: int = 500,
    seed: int = 0,
    typed: torch.Tensor | None = None,
    on_curve: Callable[[GridStudy], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GridStudy:
    """Each sampler on each grid at each NFE (and once on the `typed` grid), from `n_points` start points; see the
    module docstring. `on_curve` sees the study after each (sampler, grid) curve: a page redraws there, and a
    Stop keeps the curves done."""
    if not 10 <= n_points <= MAX_ACCURACY_POINTS:
        raise BadInputError(f"Measure with 10 to {MAX_ACCURACY_POINTS:,} points.")
    unknown = [g for g in grids if g not in GRIDS] + [s for s in samplers if s not in SAMPLERS]
    if unknown:
        raise BadInputError(f"Unknown grid or sampler: {', '.join(unknown)}.")
    noisy = [SAMPLERS[s].title for s in samplers if SAMPLERS[s].injects_noise()]
    if noisy:
        raise BadInputError(f"Grids are compared on deterministic samplers; {', '.join(noisy)} draws fresh noise.")
    if typed is not None and abs(float(typed[0]) - SIGMA_MAX) > 1e-9 * SIGMA_MAX:
        raise BadInputError(f"A typed grid here starts at σ = {SIGMA_MAX:g}, where the start points are drawn.")
    if not nfes or min(nfes) < 1 or max(nfes) > 200:
        raise BadInputError("The NFE values must lie between 1 and 200.")
    with torch_threads(1):  # many small ops: one thread is faster
        return _study(mix, list(samplers), list(grids), sorted(set(nfes)), n_points, seed, typed, on_curve, should_stop)


def _study(
    mix: GaussianMixture,
    samplers: list[str],
    grids: list[str],
    nfes: list[int],
    n_points: int,
    seed: int,
    typed: torch.Tensor | None,
    on_curve: Callable[[GridStudy], None] | None,
    should_stop: Callable[[], bool] | None,
) -> GridStudy:
    tic = time.perf_counter()
    x_T = start_points(n_points, seed)
    target = ode_endpoint(mix, x_T)
    fitted = _Fitted(mix, seed, should_stop)
    study = GridStudy(curves=[], n_points=n_points, nfes=nfes)
    kinds = grids + ([TYPED] if typed is not None else [])
    for sampler in samplers:
        spec = SAMPLERS[sampler]
        for kind in kinds:
            curve = GridCurve(sampler, kind)
            if kind == TYPED:
                plan = [typed.to(torch.float64)]
            else:
                budgets = [n for n in nfes if kind != "optimised" or n <= OPTIMISE_UP_TO]
                counts = sorted({steps_for(spec, n) for n in budgets})
                plan = [
                    HAND_MADE[kind](k, SIGMA_MIN, SIGMA_MAX) if kind in HAND_MADE else fitted.grid(kind, sampler, k)
                    for k in counts
                ]
            for sigmas in plan:
                if should_stop is not None and should_stop():
                    study.seconds = time.perf_counter() - tic
                    return study
                out = sample(sampler, mix.denoise, x_T.clone(), sigmas)
                curve.nfes.append(spec.nfe(len(sigmas) - 1))
                curve.errors.append(rms_distance(out, target))
                curve.sigmas.append(sigmas)
            study.curves.append(curve)
            study.seconds = time.perf_counter() - tic
            if on_curve is not None:
                on_curve(study)
    study.complete = True
    return study
