"""Checkpoint comparison helpers: loading several models, shared settings, and on-demand MNIST quality
(FD-LeNet to held-out digits, classifier readings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.image_metrics import class_histogram, classify, frechet_distance
from core.schedules import DEFAULT_MAX_SIGMA
from ui.sampling_run import SamplerSettings, run_sampler
from zoo.loaders import LoadedModel

MAX_QUALITY_SAMPLES = 1000
CHUNK = 100


@dataclass(frozen=True)
class Quality:
    samples: int
    fd_lenet: float
    accuracy: float | None  # share read as the requested class (conditional runs)
    smallest_class: float  # smallest class share (unconditional runs: near 10% is healthy)
    largest_class: float


def held_out_features(classifier: torch.nn.Module, images_uint8: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images_uint8, dtype=np.float32) / 127.5 - 1)
    return classify(classifier, x)[1]


def measure(
    loaded: LoadedModel,
    settings: SamplerSettings,
    n: int,
    classifier: torch.nn.Module,
    reference: np.ndarray,
    progress: Callable[[float], None] | None = None,
) -> Quality:
    """Sample n images in chunks (seeds seed, seed + 1, ...) and score them against held-out features."""
    n = max(2, min(n, MAX_QUALITY_SAMPLES))
    images = []
    for start in range(0, n, CHUNK):
        chunk = replace(settings, seed=settings.seed + start, batch=min(CHUNK, n - start))
        images.append(run_sampler(loaded, chunk, every=chunk.steps + 1, keep=1).images)
        if progress is not None:
            progress(min(1.0, (start + CHUNK) / n))
    labels, feats = classify(classifier, torch.cat(images).clamp(-1, 1))
    hist = class_histogram(labels)
    accuracy = float((labels == settings.label).mean()) if settings.label is not None else None
    return Quality(n, frechet_distance(feats, reference), accuracy, float(hist.min()), float(hist.max()))


def load_checkpoints(names: list[str], typed: str) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Loaded models by name, and the error sentence of each one that failed to load."""
    from core.errors import AtlasError
    from ui.cache import hub_model, zoo_model

    loaded, failures = {}, {}
    for name in [*names, *([typed.strip()] if typed.strip() else [])]:
        try:
            loaded[name] = hub_model(name) if name == typed.strip() else zoo_model(name)
        except AtlasError as e:
            failures[name] = str(e)
    return loaded, failures


def settings_for(
    model: LoadedModel, sampler: str, steps: int, seed: int, batch: int, label: int | None
) -> SamplerSettings:
    """The same sampler and noise for every checkpoint; the class only for class-conditional ones."""
    return SamplerSettings(
        sampler, steps, "trailing", {}, None, DEFAULT_MAX_SIGMA, seed, batch, label if model.num_classes else None, 3.0
    )


def quality_row(name: str, q: Quality) -> dict[str, object]:
    return {
        "checkpoint": name,
        "samples": q.samples,
        "FD-LeNet": round(q.fd_lenet, 2),
        "read as requested class": "-" if q.accuracy is None else f"{q.accuracy:.1%}",
        "smallest class share": f"{q.smallest_class:.1%}",
        "largest class share": f"{q.largest_class:.1%}",
    }
