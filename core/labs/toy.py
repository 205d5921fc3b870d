"""The toy lab's logic, free of any UI: a small MLP denoiser trained on a point cloud, sampled with any engine
sampler (samples with their paths, distances to fresh data and what they read for data itself), and its
drift fields.

The model learns the standardised data (core/data/standardize.py) and remembers the cloud it learnt, so
samples, distances and fields always compare it with its own data. Sampling runs in VE coordinates
x = x_0 + sigma eps; paths are kept in VP coordinates y = x / sqrt(1 + sigma^2), where the cloud starts as
unit-scale noise (in standardised units) and ends on the data, and everything is returned in the data's units.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from core.data.standardize import Standardizer
from core.data.toy import PointCloud
from core.device import torch_threads
from core.diffusion.denoisers import Denoiser, clip_denoised, model_denoiser
from core.diffusion.fields import DriftField, drift_field, mesh
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import get_sampler, sample
from core.diffusion.schedules import make_schedule
from core.diffusion.trajectory import PathRecorder
from core.errors import BadInputError
from core.limits import max_points
from core.metrics.points import mmd, sliced_wasserstein
from core.metrics.reference import ReferenceBand, reference_bands
from core.models.mlp import MLPConfig, build_mlp, parameter_count
from core.runs.record import Run
from core.training import budget
from core.training.diffusion import BatchFn, DiffusionTrainer, TrainConfig, paired_batches, tensor_batches
from core.training.posthoc_ema import STREAMS
from core.training.snapshots import WeightSnapshots

MAX_TRAIN_STEPS = 20_000
MAX_SAMPLE_STEPS = 1000
MAX_PATH_POINTS = 5000
MAX_FRAMES = 61


@dataclass(frozen=True, kw_only=True)
class ToySettings:
    """Everything a person picks for one model and its training."""

    schedule: str = "linear"
    T: int = 1000
    beta_start: float | None = None  # None: the schedule's default (or it has no beta range)
    beta_end: float | None = None
    prediction_type: str = "v_prediction"  # well conditioned at every noise level (Salimans & Ho 2022)
    width: int = 64
    depth: int = 2
    time_embedding: str = "sinusoidal"
    lr: float = 1e-2
    batch_size: int = 512
    ema_decay: float | None = 0.99
    seed: int = 0


def model_config(settings: ToySettings, dim: int) -> MLPConfig:
    return MLPConfig(
        dim=dim,
        width=settings.width,
        depth=settings.depth,
        time_embedding=settings.time_embedding,
        num_steps=settings.T,
    )


def training_seconds(settings: ToySettings, dim: int, steps: int) -> float:
    """About how long `steps` steps of this model take on this server (core/training/budget.py)."""
    return budget.estimate_seconds(steps, settings.batch_size, parameter_count(model_config(settings, dim)))


class ToyRun:
    """One model being trained on one point cloud: trainer, schedule, standardisation and its run log."""

    def __init__(
        self,
        cloud: PointCloud,
        settings: ToySettings,
        name: str = "toy",
        threads: int = 1,
        pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
        coupling: tuple[str, Callable[[torch.Tensor], BatchFn]] | None = None,
    ) -> None:
        """`pairs` (data, noise), standardised: train on that coupling instead of the cloud with fresh noise
        (rectified flow's reflow, core/labs/objectives.py); `coupling` (what it is, and a function of the
        standardised data giving the batches): batches whose noise a coupling pairs with the data (minibatch OT,
        core/labs/few_step.py). The model still belongs to `cloud`."""
        self.name, self.settings, self.cloud = name, settings, cloud  # the model belongs to the data it learnt
        self.data_key, self.data_title, self.dim = cloud.key, cloud.title, cloud.dim
        self.threads = threads
        self.schedule = make_schedule(settings.schedule, settings.T, settings.beta_start, settings.beta_end)
        self.standardizer = Standardizer.fit(cloud.points)
        self.model_config = model_config(settings, cloud.dim)
        train = TrainConfig(
            batch_size=settings.batch_size,
            lr=settings.lr,
            ema_decay=settings.ema_decay,
            prediction_type=settings.prediction_type,
            seed=settings.seed,
            lr_schedule="cosine",  # each Train / Continue is one cosine cycle (warm restarts)
            adam_betas=(0.9, 0.99),  # a shorter second-moment memory suits runs of a few thousand steps
            posthoc_ema=STREAMS,  # kept with each checkpoint: any EMA length rebuilt afterwards (Compare checkpoints)
        )
        data = self.standardizer.transform(cloud.points).float()  # centred and scaled in float64, then cast
        batches = tensor_batches(data) if pairs is None else paired_batches(pairs[0].float(), pairs[1].float())
        paired = None if pairs is None else f"{len(pairs[0]):,} (data, noise) pairs (reflow)"
        if coupling is not None:
            paired, batches = coupling[0], coupling[1](data)
        self.trainer = DiffusionTrainer(build_mlp(self.model_config, settings.seed), self.schedule, train, batches)
        self.target_step = 0  # where the last `train` call was heading (below it: stopped early)
        self._training = threading.Lock()  # held while `train` runs (see `idle`)
        # the EMA weights along training (for comparisons over training, and to take home with the run)
        self.snapshots = WeightSnapshots(250, self.model_config.to_saved(), self.schedule, settings.prediction_type)
        config = {
            "kind": "toy",
            "data": {
                "title": cloud.title,
                "key": cloud.key,
                "points": len(cloud.points),
                "coupling": paired,
            },
            "settings": asdict(settings),
            "model": self.model_config.to_dict(),
            "train": train.to_dict(),
            "standardize": {"mean": self.standardizer.mean.tolist(), "scale": self.standardizer.scale},
        }
        # The run as the Training logs page reads it; its metrics are the trainer's own list, growing as it trains.
        self.log = Run(
            name=name,
            source="this session",
            config=config,
            metrics=self.trainer.metrics,
            checkpoints=self.snapshots.listing,
            snapshots=self.snapshots,
        )

    @property
    def step(self) -> int:
        return self.trainer.step

    def train(self, steps: int, callback: Callable[[DiffusionTrainer], None] | None = None, every: int = 10) -> None:
        """`steps` more steps (capped at MAX_TRAIN_STEPS in all, and by the server's time budget before they
        start); see DiffusionTrainer.train. One training of a model at a time: another waits for it."""
        with self._training:
            if steps < 1 or self.step + steps > MAX_TRAIN_STEPS:
                raise BadInputError(
                    f"A toy model trains for at most {MAX_TRAIN_STEPS:,} steps in all (now {self.step:,})."
                )
            budget.check(training_seconds(self.settings, self.dim, steps), "training")
            self.target_step = self.step + steps
            with torch_threads(self.threads):
                self.snapshots.train(self.trainer, steps, callback, every)

    def idle(self, timeout: float = 30.0) -> bool:
        """Wait until no training of this model is under way (at most `timeout` seconds); True once none is.

        Streamlit starts a page's next run in a new thread at once (its fast reruns) while the interrupted one
        goes on training until its next redraw, where it ends: a run that reads the model waits here first, so it
        shows the model as kept, not one a few steps short of it."""
        if not self._training.acquire(timeout=timeout):
            return False
        self._training.release()
        return True

    def fresh_data(self, m: int, generator: torch.Generator) -> torch.Tensor:
        """m fresh points of the run's data, standardised (float64): drawn from its law, or, without one (a CSV
        upload), from its points with replacement."""
        cloud = self.cloud
        if cloud.fresh is not None:
            points = cloud.fresh(m, generator)
        else:
            points = cloud.points[torch.randint(len(cloud.points), (m,), generator=generator)]
        return self.standardizer.transform(points.double())

    def data_box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-axis bounds of the standardised training data, grown by 10% of its size on each side."""
        y = self.standardizer.transform(self.cloud.points.double())
        lo, hi = y.min(0).values, y.max(0).values
        pad = 0.1 * (hi - lo).max()
        return (lo - pad).float(), (hi + pad).float()

    def denoiser(self, step: int | None = None, ema_length: float | None = None) -> Denoiser:
        """The model now, or at a kept checkpoint `step` (see `snapshots`); with `ema_length`, the post-hoc EMA
        of that length (sigma_rel) at the checkpoint, rebuilt from the streams kept up to it."""
        model = self.trainer.sampling_model
        if ema_length is not None or (step is not None and step != self.step):
            step = self.step if step is None else step
            if step not in self.snapshots.states:
                raise BadInputError(f"This model has no checkpoint at step {step:,}.")
            state = (
                self.snapshots.state(step) if ema_length is None else self.snapshots.posthoc_state(step, ema_length)[0]
            )
            model = build_mlp(self.model_config, self.settings.seed)
            model.load_state_dict(state)
            model.eval().requires_grad_(False)
        return model_denoiser(model, self.schedule, self.settings.prediction_type)


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
    at_step: int | None = None,
    ema_length: float | None = None,
    **options: float | str,
) -> SampleResult:
    """n samples from the run's model (now, or at its checkpoint `at_step`; with `ema_length`, its post-hoc EMA of
    that length there), and the trajectory of the first `path_points` of them.

    clip: clamp every x_0 estimate to the training data's box grown by 10% a side (DDPM's clip_sample)."""
    spec = get_sampler(sampler)
    most = max_points()
    if not 1 <= n <= most or not 1 <= steps <= min(MAX_SAMPLE_STEPS, run.schedule.num_steps):
        raise BadInputError(
            f"Sample 1 to {most:,} points in 1 to {min(MAX_SAMPLE_STEPS, run.schedule.num_steps)} steps."
        )
    sigmas = run.schedule.sampling_sigmas(steps, spacing).float()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, run.dim, generator=g) * sigmas[0]
    m = min(path_points, n, MAX_PATH_POINTS)
    keep = set(torch.linspace(0, steps - 1, min(frames - 1, steps)).round().long().tolist())
    recorder = PathRecorder(points=m, steps=keep)
    with torch_threads(run.threads):
        tic = time.perf_counter()
        denoiser = run.denoiser(at_step, ema_length)
        if clip:
            lo, hi = run.data_box()
            denoiser = clip_denoised(denoiser, lo, hi)
        out = sample(sampler, denoiser, x, sigmas, generator=g, callback=recorder, **options)
        seconds = time.perf_counter() - tic
    recorder.finish(out)
    sig = torch.tensor(recorder.sigmas, dtype=torch.float64)
    inv = run.standardizer.inverse
    label = {"sampler": sampler, "steps": steps, "spacing": spacing, "seed": seed, "n": n, **options}
    if clip:
        label["clip"] = True
    if at_step is not None:
        label["checkpoint"] = at_step
    if ema_length is not None:
        label["ema_length"] = ema_length
    return SampleResult(
        samples=inv(out.double()),
        path=inv(recorder.path().double()),
        path_x0=inv(recorder.estimates().double()),
        sigmas=sig,
        times=run.schedule.sigma_to_t(sig) / (run.schedule.num_steps - 1) * (sig > 0),
        seconds=seconds,
        nfe=spec.nfe(steps, options),
        label=label,
    )


def escaped_share(result: SampleResult, run: ToyRun) -> float:
    """The share of samples outside the data's box (see ToyRun.data_box): a sampler or model blowing up."""
    lo, hi = run.data_box()
    y = run.standardizer.transform(result.samples.double()).float()
    return float(((y < lo) | (y > hi)).any(dim=1).double().mean())


MEASURED_POINTS = 10_000  # distances to fresh data use at most this many samples


def _measures(seed: int) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
    """Sliced Wasserstein-2 (128 directions) and MMD (RBF, median bandwidth, 2000 points), seeded."""
    return {
        "swd": lambda a, b: sliced_wasserstein(a, b, projections=128, generator=torch.Generator().manual_seed(seed)),
        "mmd": lambda a, b: mmd(a, b, max_points=2000, generator=torch.Generator().manual_seed(seed)),
    }


def _measured(result: SampleResult, n_max: int) -> int:
    return min(len(result.samples), n_max)


def distances(result: SampleResult, run: ToyRun, seed: int = 0, n_max: int = MEASURED_POINTS) -> dict[str, float]:
    """`swd` and `mmd` (see `_measures`) from the samples to as many fresh data points, in standardised units, on
    at most `n_max` samples. Without a law to draw from (a CSV upload), the fresh points are drawn from the data
    points themselves. What these read for data itself: `reference`."""
    x = run.standardizer.transform(result.samples[: _measured(result, n_max)].double())
    with torch_threads(run.threads):
        ref = run.fresh_data(len(x), torch.Generator().manual_seed(10_000 + seed))
        return {name: distance(x, ref) for name, distance in _measures(seed).items()}


# What data itself reads (`reference`), by the data it is drawn from and then by (points, seed): every model of one
# data set shares it, and it goes with its data.
_REFERENCES: weakref.WeakKeyDictionary[PointCloud, dict[tuple[int, int], dict[str, ReferenceBand]]] = (
    weakref.WeakKeyDictionary()
)


def reference(
    result: SampleResult, run: ToyRun, seed: int = 0, n_max: int = MEASURED_POINTS
) -> dict[str, ReferenceBand]:
    """What `distances` reads between two fresh data sets of the very sizes it compared (its n samples, its n
    fresh points), over REPEATS draws (core/metrics/reference.py): a band for `swd` and one for `mmd`. Computed
    once per data set, size and seed."""
    n = _measured(result, n_max)
    kept = _REFERENCES.setdefault(run.cloud, {})
    if (n, seed) not in kept:
        with torch_threads(run.threads):
            kept[(n, seed)] = reference_bands(run.fresh_data, (n, n), _measures(seed), seed=20_000 + seed)
    return kept[(n, seed)]


def fields(run: ToyRun, times: torch.Tensor, grid_size: int) -> tuple[DriftField, DriftField | None]:
    """The learned drift field on a grid over the data's extent, and the exact one for mixture data sets.

    Both are returned in original units (see DriftField.rescaled)."""
    st, cloud = run.standardizer, run.cloud
    y = st.transform(cloud.points.double())
    _, points = mesh(y.min(0).values, y.max(0).values, grid_size)
    with torch_threads(run.threads):
        learned = drift_field(run.denoiser(), run.schedule, points, times).rescaled(st.mean, st.scale)
    exact = None
    if isinstance(cloud.mixture, GaussianMixture):
        exact = drift_field(st.mixture(cloud.mixture).denoise, run.schedule, points, times).rescaled(st.mean, st.scale)
    return learned, exact
