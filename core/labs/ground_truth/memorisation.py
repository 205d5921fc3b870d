"""Memorisation: the optimal denoiser of a finite training set puts every sample on a training point, and a
model that fits its training loss too well moves towards it.

- `empirical_denoiser`, `optimal_samples`: that denoiser (the mixture of point masses) and its samples.
- `nearness`: how near samples land to a training set, and the share that copy a point (COPY_RATIO).
- `sample_nearness`: the optimal denoiser's samples, a toy model's and fresh draws, measured against the
  model's training set.
- `run_study`: a fresh toy model per training-set size, trained in chunks, its copy share measured after each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.device import torch_threads
from core.diffusion.denoisers import Denoiser
from core.diffusion.grids import karras_sigmas
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import sample
from core.errors import BadInputError
from core.labs.ground_truth.mixtures import mixture_cloud, model_seconds
from core.labs.ground_truth.noise import SIGMA_MAX, SIGMA_MIN, start_points
from core.labs.toy import ToyRun, ToySettings, run_sampler

MAX_TRAINING_SET = 2000
COPY_RATIO = 1 / 3  # a sample "copies" a training point when it is 3x nearer to it than to the next one
NEARNESS_SAMPLES, NEARNESS_STEPS = 1000, 40  # samples drawn from each source, Heun steps for them
STUDY_SAMPLES, STUDY_STEPS, BASELINE_DRAWS = 500, 30, 2000  # per measurement; fresh draws for the baseline


def empirical_denoiser(points: torch.Tensor) -> Denoiser:
    """The optimal denoiser for a finite training set: E[x_0 | x] when x_0 is one of the points, a softmax-weighted
    mean of them (the mixture of point masses; a std of 1e-9 stands for zero). Sampled all the way down, every
    sample lands on a training point: what a network that fitted its training loss perfectly would do."""
    if not 1 <= len(points) <= MAX_TRAINING_SET:
        raise BadInputError(f"The training set must hold 1 to {MAX_TRAINING_SET:,} points.")
    return GaussianMixture(points.double(), 1e-9).denoise


def optimal_samples(points: torch.Tensor, n: int, seed: int = 0, steps: int = 40) -> torch.Tensor:
    """n samples [n, 2] of the optimal denoiser for the training set `points` (Heun, `steps` steps on the Karras
    grid from the common start points)."""
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


def sample_nearness(mix: GaussianMixture, run: ToyRun) -> dict[str, Nearness]:
    """NEARNESS_SAMPLES samples of the optimal denoiser for the model's training set, of the model (Heun,
    NEARNESS_STEPS steps each) and fresh draws from the mixture: how near each lands to a training point."""
    train = run.cloud.points.double()
    optimal = optimal_samples(train, NEARNESS_SAMPLES, seed=7, steps=NEARNESS_STEPS)
    learned = run_sampler(run, "heun", NEARNESS_STEPS, NEARNESS_SAMPLES, seed=7).samples
    fresh, _ = mix.sample(NEARNESS_SAMPLES, torch.Generator().manual_seed(8))
    return {
        "Optimal denoiser of the training set": nearness(optimal, train),
        f"Model {run.name}": nearness(learned, train),
        "Fresh draws from the mixture": nearness(fresh, train),
    }


# ---- the study over training-set size and training time ----------------------------------------------------------


@dataclass
class Study:
    rows: list[dict[str, float]]  # {"points": training-set size, "step": training step, "copied": share}
    baseline: float  # the copy share of fresh draws (against the largest set)
    planned: int  # measurements planned


def study_seconds(sizes: Sequence[int], steps: int) -> float:
    """About how long the study trains: one model per size, `steps` steps each."""
    return len(sizes) * model_seconds(steps)


def plan_study(sizes: Sequence[int], checkpoints: int) -> int:
    """The measurements a study of these training-set sizes makes (`checkpoints` each); refused without a size or
    a measurement."""
    if not sizes:
        raise BadInputError("Choose at least one training-set size.")
    if checkpoints < 1:
        raise BadInputError("Measure at least once per training-set size.")
    return len(sizes) * checkpoints


def run_study(
    mix: GaussianMixture,
    sizes: Sequence[int],
    steps: int,
    checkpoints: int,
    on_row: Callable[[Study], None] | None = None,
) -> Study:
    """A toy model (default settings, seed 0) per training-set size, on draws of the mixture (seed 0), each
    trained `steps` steps in `checkpoints` equal chunks; after each chunk, the share of STUDY_SAMPLES Heun
    samples (STUDY_STEPS steps, seed 1) that copy a training point. `on_row` sees the study when it starts (no
    rows yet) and after each measurement (a page keeps it there, so a Stop keeps the rows done)."""
    planned = plan_study(sizes, checkpoints)
    fresh, _ = mix.sample(BASELINE_DRAWS, torch.Generator().manual_seed(9))
    biggest = mixture_cloud(mix, max(sizes), seed=0).points
    study = Study(rows=[], baseline=nearness(fresh, biggest).copied, planned=planned)
    if on_row is not None:
        on_row(study)
    chunk = max(1, steps // checkpoints)
    for n in sorted(sizes):
        cloud = mixture_cloud(mix, n, seed=0)
        run = ToyRun(cloud, ToySettings(seed=0))
        for _ in range(checkpoints):
            run.train(chunk)
            samples = run_sampler(run, "heun", STUDY_STEPS, STUDY_SAMPLES, seed=1).samples
            study.rows.append({"points": n, "step": run.step, "copied": nearness(samples, cloud.points).copied})
            if on_row is not None:
                on_row(study)
    return study
