"""The toy lab's model, free of any UI: settings -> a small MLP denoiser trained on a point cloud, and its
drift fields in the data's own units. Sampling it lives in core/toy_sampling.py.

The model learns the standardised data (core/data/standardize.py) and remembers the cloud it learnt, so
samples, distances and fields always compare it with its own data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from core.data.standardize import Standardizer
from core.data.toy import PointCloud
from core.denoisers import DiscreteTimeDenoiser, GaussianMixtureDenoiser
from core.errors import BadInputError
from core.fields import DriftField, drift_field, grid
from core.models.mlp import MLPConfig, build_mlp
from core.schedules import make_schedule
from core.threads import torch_threads
from core.training import DiffusionTrainer, TrainConfig, tensor_batches

MAX_TRAIN_STEPS = 20_000


@dataclass(frozen=True)
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


class ToyRun:
    """One model being trained on one point cloud: trainer, schedule, standardisation and run record."""

    def __init__(self, cloud: PointCloud, settings: ToySettings, name: str = "toy", threads: int = 1) -> None:
        self.settings, self.cloud = settings, cloud  # the model belongs to the data it learnt
        self.data_key, self.data_title, self.dim = cloud.key, cloud.title, cloud.dim
        self.threads = threads
        self.schedule = make_schedule(settings.schedule, settings.T, settings.beta_start, settings.beta_end)
        self.standardizer = Standardizer.fit(cloud.points)
        self.model_config = MLPConfig(
            cloud.dim, settings.width, settings.depth, settings.time_embedding, num_steps=settings.T
        )
        train = TrainConfig(
            batch_size=settings.batch_size,
            lr=settings.lr,
            ema_decay=settings.ema_decay,
            prediction_type=settings.prediction_type,
            seed=settings.seed,
            lr_schedule="cosine",  # each Train / Continue is one cosine cycle (warm restarts)
            adam_betas=(0.9, 0.99),  # a shorter second-moment memory suits runs of a few thousand steps
        )
        data = self.standardizer.transform(cloud.points.float())
        self.trainer = DiffusionTrainer(
            build_mlp(self.model_config, settings.seed), self.schedule, train, tensor_batches(data)
        )
        self.target_step = 0  # where the last `train` call was heading (below it: stopped early)
        self.floors: dict[tuple[int, int], tuple[float, float]] = {}  # distances between fresh data sets
        self.record: dict[str, Any] = {
            "name": name,
            "kind": "toy",
            "config": {
                "data": {"title": cloud.title, "key": cloud.key, "points": len(cloud.points)},
                "settings": asdict(settings),
                "model": self.model_config.to_dict(),
                "train": train.to_dict(),
                "standardize": {"mean": self.standardizer.mean.tolist(), "scale": self.standardizer.scale},
            },
            "metrics": self.trainer.metrics,  # the trainer's own list: grows as it trains
        }

    @property
    def step(self) -> int:
        return self.trainer.step

    def train(self, steps: int, callback: Callable[[DiffusionTrainer], None] | None = None, every: int = 10) -> None:
        """`steps` more steps (capped at MAX_TRAIN_STEPS in all); see DiffusionTrainer.train."""
        if steps < 1 or self.step + steps > MAX_TRAIN_STEPS:
            raise BadInputError(f"A toy model trains for at most {MAX_TRAIN_STEPS:,} steps in all (now {self.step:,}).")
        self.target_step = self.step + steps
        with torch_threads(self.threads):
            self.trainer.train(steps, callback, every)

    def data_box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-axis bounds of the standardised training data, grown by 10% of its size on each side."""
        y = self.standardizer.transform(self.cloud.points.double())
        lo, hi = y.min(0).values, y.max(0).values
        pad = 0.1 * (hi - lo).max()
        return (lo - pad).float(), (hi + pad).float()

    def denoiser(self) -> DiscreteTimeDenoiser:
        return DiscreteTimeDenoiser(self.trainer.sampling_model, self.schedule, self.settings.prediction_type)


def fields(run: ToyRun, times: torch.Tensor, grid_size: int) -> tuple[DriftField, DriftField | None]:
    """The learned drift field on a grid over the data's extent, and the exact one for mixture data sets.

    Both are returned in original units (see DriftField.rescaled)."""
    st, cloud = run.standardizer, run.cloud
    y = st.transform(cloud.points.double())
    _, points = grid(y.min(0).values, y.max(0).values, grid_size)
    with torch_threads(run.threads):
        learned = drift_field(run.denoiser(), run.schedule, points, times).rescaled(st.mean, st.scale)
    exact = None
    if isinstance(cloud.mixture, GaussianMixtureDenoiser):
        exact = drift_field(st.mixture(cloud.mixture), run.schedule, points, times).rescaled(st.mean, st.scale)
    return learned, exact
