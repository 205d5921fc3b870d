"""Objectives side by side on the toy lab's data, and rectified flow's reflow.

`compare`: models that differ only in what they learn (epsilon, x_0, v, or flow matching's velocity) -- the
same data, network, training budget and seed -- sampled with Euler (= DDIM) from the same noise eps at NFE
1, 2, 4, 8, 16, 32. A diffusion objective keeps the lab's schedule; flow matching trains on the flow path.
For each: SW2 to fresh data against the NFE, and how straight the sampling paths are.

Straightness is measured in each model's own coordinates: x_t = a x_0 + b eps of its path (VP for the
diffusion schedules, (1 - t) x_0 + t eps for flow), against its own time tau in [0, 1] (t / (T - 1) on a
discrete schedule, t on the flow path):
- `chord_ratio`: per point, the distance from start to end over the length of the path, averaged (1: straight);
- `curvature`: Liu et al. 2023's S = integral over tau of E |(x_end - x_start) / span - dx/dtau|^2, summed
  over the steps of a fine Euler run, in standardised units (0: every path a straight line at constant speed).
On one data law every schedule has the same noisy marginals x_0 + sigma eps, so the exact ODE's paths are the
same curves in sigma; what differs is how they are parametrised, which decides how far a few steps go.

`reflow` (Liu et al. 2023, "Flow straight and fast"): draw noise, sample it with a trained flow model (a fine
grid), and train a new flow model on those (noise, sample) pairs; the new model's paths are straighter, so one
or two steps get much closer to the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from core.data.toy import PointCloud
from core.device import torch_threads
from core.diffusion.flow import t_of_sigma
from core.diffusion.samplers import sample
from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError
from core.labs.toy import ToyRun, ToySettings
from core.metrics.points import sliced_wasserstein
from core.metrics.reference import ReferenceBand, reference_bands
from core.training.diffusion import DiffusionTrainer

OBJECTIVES = {
    "epsilon": "ε (noise)",
    "sample": "x₀ (data)",
    "v_prediction": "v (velocity)",
    "flow_prediction": "flow matching",
}
NFE_LADDER = (1, 2, 4, 8, 16, 32)
PATH_STEPS = 64  # the fine Euler run whose paths are measured
MAX_COMPARE_POINTS = 5000
MAX_PAIRS = 20_000
PAIR_STREAM = 1_000_003  # reflow's noise is drawn from seed + this (see `coupling`)


def settings_for(base: ToySettings, objective: str) -> ToySettings:
    """The lab's settings with another objective: flow matching on the flow path (same T), a diffusion
    objective on the lab's schedule (or the linear one, if the lab's is the flow path)."""
    if objective not in OBJECTIVES:
        raise BadInputError(f"Unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}.")
    if objective == "flow_prediction":
        return replace(base, prediction_type=objective, schedule="flow", beta_start=None, beta_end=None)
    if base.schedule == "flow":
        return replace(base, prediction_type=objective, schedule="linear", beta_start=None, beta_end=None)
    return replace(base, prediction_type=objective)


@dataclass(frozen=True, eq=False)
class Paths:
    states: torch.Tensor  # [F, n, D] x_t on the model's own path, standardised units, from noise to the samples
    tau: torch.Tensor  # [F] the model's own time, from about 1 down to 0


def own_paths(run: ToyRun, eps: torch.Tensor, steps: int = PATH_STEPS) -> Paths:
    """Euler (DDIM) paths from the noise eps [n, D] (standardised), in the model's own coordinates."""
    schedule = run.schedule
    sigmas = schedule.sampling_sigmas(steps, "trailing").float()
    seen: list[tuple[torch.Tensor, float]] = []
    with torch_threads(run.threads):
        out = sample("euler", run.denoiser(), eps * sigmas[0], sigmas, callback=lambda s: seen.append((s.x, s.sigma)))
    states = [x * schedule.signal_and_noise(torch.tensor(s))[0].float() for x, s in seen] + [out]
    return Paths(states=torch.stack(states), tau=torch.cat([own_time(schedule, sigmas[:-1]), torch.zeros(1)]))


def own_time(schedule: NoiseSchedule, sigmas: torch.Tensor) -> torch.Tensor:
    """tau in [0, 1] at noise levels sigma: t on the flow path, t / (T - 1) on a discrete schedule."""
    sigmas = sigmas.double()
    if schedule.path == "flow":
        return t_of_sigma(sigmas).float()
    return (schedule.sigma_to_t(sigmas) / (schedule.num_steps - 1)).float()


def chord_ratio(paths: Paths) -> float:
    """Mean over points of |end - start| / path length (1 for straight paths)."""
    x = paths.states.double()
    length = (x[1:] - x[:-1]).norm(dim=-1).sum(0)
    chord = (x[-1] - x[0]).norm(dim=-1)
    return float((chord / length.clamp_min(1e-12)).mean())


def curvature(paths: Paths) -> float:
    """Liu et al.'s straightness S, discretised over the path's steps (see the module docstring)."""
    x, tau = paths.states.double(), paths.tau.double()
    dtau = tau[:-1] - tau[1:]  # > 0, from noise to data
    span = float(tau[0] - tau[-1])
    chord = (x[-1] - x[0]) / span
    rates = (x[1:] - x[:-1]) / dtau[:, None, None]
    return float(((rates - chord) ** 2).sum(-1).mul(dtau[:, None]).sum(0).mean())


@dataclass(frozen=True, kw_only=True)
class ObjectiveResult:
    name: str  # the run's name
    objective: str
    sw2: dict[int, float]  # NFE -> SW2 to fresh data (standardised units)
    reference: ReferenceBand  # SW2 between two fresh data sets of n points each, over repeats
    chord_ratio: float
    curvature: float
    paths: Paths  # the fine run's paths (its first points, for the figure)
    samples: dict[int, torch.Tensor]  # NFE -> samples [n, D] in the data's units
    seconds: float


def measure(run: ToyRun, n: int, seed: int = 0, ladder: Sequence[int] = NFE_LADDER, keep: int = 400) -> ObjectiveResult:
    """SW2 at each NFE of `ladder` (Euler, trailing grid; those the schedule's T allows) to n fresh points, what
    SW2 reads between two fresh data sets of that size, and the straightness of a fine run, all from the same
    noise (seed), in standardised units."""
    if not 100 <= n <= MAX_COMPARE_POINTS:
        raise BadInputError(f"Measure 100 to {MAX_COMPARE_POINTS:,} points.")
    tic = time.perf_counter()
    eps = torch.randn(n, run.dim, generator=torch.Generator().manual_seed(seed))
    ref = run.fresh_data(n, torch.Generator().manual_seed(10_000 + seed))

    def sw2(x: torch.Tensor, y: torch.Tensor) -> float:
        return sliced_wasserstein(x.double(), y, projections=128, generator=torch.Generator().manual_seed(seed))

    sw, samples = {}, {}
    for nfe in [k for k in ladder if k <= run.schedule.num_steps]:
        sigmas = run.schedule.sampling_sigmas(nfe, "trailing").float()
        with torch_threads(run.threads):
            out = sample("euler", run.denoiser(), eps * sigmas[0], sigmas)
        sw[nfe], samples[nfe] = sw2(out, ref), run.standardizer.inverse(out.double())
    paths = own_paths(run, eps, min(PATH_STEPS, run.schedule.num_steps))
    return ObjectiveResult(
        name=run.name,
        objective=run.settings.prediction_type,
        sw2=sw,
        reference=reference_bands(run.fresh_data, (n, n), {"sw2": sw2}, seed=20_000 + seed)["sw2"],
        chord_ratio=chord_ratio(paths),
        curvature=curvature(paths),
        paths=Paths(states=paths.states[:, :keep], tau=paths.tau),
        samples=samples,
        seconds=time.perf_counter() - tic,
    )


def compare(
    cloud: PointCloud,
    base: ToySettings,
    objectives: Sequence[str],
    steps: int,
    n: int,
    seed: int = 0,
    callback: Callable[[str, DiffusionTrainer], None] | None = None,
    names: Callable[[str], str] = lambda objective: objective,
) -> Iterator[tuple[ToyRun, ObjectiveResult]]:
    """Train one model per objective (same data, network, steps and seed) and measure it; one at a time, so a
    caller may stop between them (or mid-training: `callback` sees each trainer every 10 steps)."""
    if not 1 <= len(objectives) <= len(OBJECTIVES) or len(set(objectives)) != len(objectives):
        raise BadInputError("Compare 1 to 4 different objectives.")
    for objective in objectives:
        run = ToyRun(cloud, settings_for(base, objective), name=names(objective))
        run.train(steps, None if callback is None else lambda tr, o=objective: callback(o, tr), every=10)
        yield run, measure(run, n, seed)


# ---- reflow ---------------------------------------------------------------------------------------------


def coupling(run: ToyRun, n: int, seed: int = 0, steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """n (noise, sample) pairs of a trained flow model, in standardised units: its deterministic coupling. The
    noise comes from its own stream (seed + PAIR_STREAM), so `measure` (noise from `seed`) judges a reflowed
    model on noise it never trained on."""
    if run.settings.prediction_type != "flow_prediction":
        raise BadInputError("Reflow straightens a flow-matching model: train one (objective: flow matching).")
    if not 100 <= n <= MAX_PAIRS:
        raise BadInputError(f"Reflow on 100 to {MAX_PAIRS:,} pairs.")
    eps = torch.randn(n, run.dim, generator=torch.Generator().manual_seed(seed + PAIR_STREAM))
    sigmas = run.schedule.sampling_sigmas(min(steps, run.schedule.num_steps), "trailing").float()
    with torch_threads(run.threads):
        x0 = sample("heun", run.denoiser(), eps * sigmas[0], sigmas)
    return eps, x0


def reflow(
    run: ToyRun,
    pairs: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    name: str = "reflow",
    callback: Callable[[DiffusionTrainer], None] | None = None,
) -> ToyRun:
    """A new flow model, the same settings as `run`'s, trained on the pairs (noise, sample): x_t runs straight
    from each sample to its own noise (core/training/diffusion.paired_batches)."""
    eps, x0 = pairs
    fresh = ToyRun(run.cloud, run.settings, name=name, threads=run.threads, pairs=(x0, eps))
    fresh.train(steps, callback, every=10)
    return fresh
