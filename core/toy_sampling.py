"""Sampling a toy model: samples with their trajectories (in the data's units), and distances to the data.

Sampling runs in VE coordinates x = x_0 + sigma eps under any of the engine's samplers. Trajectories are
kept in VP coordinates y = x / sqrt(1 + sigma^2), where the cloud starts as unit-scale noise (in
standardised units) and ends on the data, then mapped back to the data's own units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from core.data.toy import MAX_POINTS
from core.denoisers import clip_denoised
from core.errors import BadInputError
from core.metrics import mmd, sliced_wasserstein
from core.samplers import Step, get_sampler, sample
from core.threads import torch_threads
from core.toy_lab import ToyRun

MAX_SAMPLE_STEPS = 1000
MAX_PATH_POINTS = 5000
MAX_FRAMES = 61


@dataclass(frozen=True, eq=False)
class SampleResult:
    samples: torch.Tensor  # [n, D] original units
    path: torch.Tensor  # [F, m, D] VP states y, original units, from noise to the final samples
    path_x0: torch.Tensor  # [F, m, D] the model's x_0 estimate at each frame (the last frame: the samples)
    sigmas: torch.Tensor  # [F] noise level of each frame (0 for the last)
    times: torch.Tensor  # [F] normalised training time u = t / (T - 1)
    seconds: float
    nfe: int
    label: dict[str, Any] = field(default_factory=dict)  # sampler, steps, spacing, options, seed, n


def run_sampler(
    run: ToyRun,
    sampler: str,
    steps: int,
    n: int,
    seed: int = 0,
    spacing: str = "trailing",
    path_points: int = 1000,
    frames: int = MAX_FRAMES,
    clip: bool = False,
    **options: float | str,
) -> SampleResult:
    """n samples from the run's model, and the trajectory of the first `path_points` of them.

    clip: clamp every x_0 estimate to the training data's box grown by 10% a side (DDPM's clip_sample)."""
    spec = get_sampler(sampler)
    if not 1 <= n <= MAX_POINTS or not 1 <= steps <= min(MAX_SAMPLE_STEPS, run.schedule.num_steps):
        raise BadInputError(
            f"Sample 1 to {MAX_POINTS:,} points in 1 to {min(MAX_SAMPLE_STEPS, run.schedule.num_steps)} steps."
        )
    sigmas = run.schedule.sampling_sigmas(steps, spacing).float()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, run.dim, generator=g) * sigmas[0]
    m = min(path_points, n, MAX_PATH_POINTS)
    keep = set(torch.linspace(0, steps - 1, min(frames - 1, steps)).round().long().tolist())
    states, estimates, frame_sigmas = [], [], []

    def record(step: Step) -> None:
        if step.index in keep:
            states.append(step.x[:m] / (1 + step.sigma**2) ** 0.5)
            estimates.append(step.denoised[:m].clone())
            frame_sigmas.append(step.sigma)

    with torch_threads(run.threads):
        tic = time.perf_counter()
        denoiser = run.denoiser()
        if clip:
            lo, hi = run.data_box()
            denoiser = clip_denoised(denoiser, lo, hi)
        out = sample(sampler, denoiser, x, sigmas, generator=g, callback=record, **options)
        seconds = time.perf_counter() - tic
    states.append(out[:m])
    estimates.append(out[:m])
    frame_sigmas.append(0.0)
    sig = torch.tensor(frame_sigmas, dtype=torch.float64)
    inv = run.standardizer.inverse
    label = {"sampler": sampler, "steps": steps, "spacing": spacing, "seed": seed, "n": n, **options}
    if clip:
        label["clip"] = True
    return SampleResult(
        inv(out.double()),
        inv(torch.stack(states).double()),
        inv(torch.stack(estimates).double()),
        sig,
        run.schedule.sigma_to_t(sig) / (run.schedule.num_steps - 1) * (sig > 0),
        seconds,
        spec.nfe(steps),
        label,
    )


def escaped_share(result: SampleResult, run: ToyRun) -> float:
    """The share of samples outside the data's box (see ToyRun.data_box): a sampler or model blowing up."""
    lo, hi = run.data_box()
    y = run.standardizer.transform(result.samples.double()).float()
    return float(((y < lo) | (y > hi)).any(dim=1).double().mean())


def distances(result: SampleResult, run: ToyRun, seed: int = 0, n_max: int = 10_000) -> dict[str, float]:
    """Sliced Wasserstein-2 (128 directions) and MMD (RBF, median bandwidth, 2000 points) from the samples to
    fresh data, in standardised units, on at most `n_max` points. `swd_floor` and `mmd_floor` are the same
    distances between two fresh data sets of that size: what "no difference" reads as at this sample size
    (computed once per run, size and seed). Without a law to draw from (a CSV upload), the reference is
    drawn from the data points themselves."""
    cloud, st = run.cloud, run.standardizer
    n = min(len(result.samples), n_max)

    def draw(m: int, g: torch.Generator) -> torch.Tensor:
        if cloud.fresh is not None:
            return cloud.fresh(m, g)
        return cloud.points[torch.randint(len(cloud.points), (m,), generator=g)]

    def both(x: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
        return (
            sliced_wasserstein(x, ref, projections=128, generator=torch.Generator().manual_seed(seed)),
            mmd(x, ref, max_points=2000, generator=torch.Generator().manual_seed(seed)),
        )

    with torch_threads(run.threads):
        g = torch.Generator().manual_seed(10_000 + seed)
        ref = st.transform(draw(n, g).double())
        if (n, seed) not in run.floors:
            run.floors[(n, seed)] = both(st.transform(draw(n, g).double()), ref)
        swd, m = both(st.transform(result.samples[:n].double()), ref)
    swd0, m0 = run.floors[(n, seed)]
    return {"swd": swd, "mmd": m, "swd_floor": swd0, "mmd_floor": m0}
