"""Same-seed comparisons: samplers x step counts (x checkpoints), each cell timed and scored (no Streamlit)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.errors import BadInputError
from core.image_metrics import classify
from core.samplers import SAMPLERS
from core.schedules import DEFAULT_MAX_SIGMA
from ui.sampling_run import SamplerSettings, run_sampler
from zoo.loaders import LoadedModel

MAX_CELLS = 24
MAX_WORK = 20_000  # model evaluations x images per comparison: about a minute for an MNIST model on a laptop CPU


@dataclass(frozen=True)
class CompareCell:
    model: str
    sampler: str
    steps: int
    nfe: int
    seconds: float
    images: torch.Tensor
    metric: str | None


def plan_work(models: Sequence[LoadedModel], samplers: Sequence[str], steps: Sequence[int], batch: int) -> int:
    """Model evaluations x images the comparison will cost; refuses plans over the caps with a sentence."""
    cells = len(models) * len(samplers) * len(steps)
    if cells == 0:
        raise BadInputError("Pick at least one sampler and one step count.")
    if cells > MAX_CELLS:
        raise BadInputError(f"That is {cells} cells; compare at most {MAX_CELLS} at once.")
    work = len(models) * batch * sum(SAMPLERS[s].nfe(n) for s in samplers for n in steps)
    if work > MAX_WORK:
        raise BadInputError(
            f"That comparison needs {work:,} image evaluations (at most {MAX_WORK:,}); use fewer images or steps."
        )
    return work


def mnist_score(classifier: torch.nn.Module, images: torch.Tensor, label: int | None) -> str:
    """With a requested class: how many samples the classifier reads as that class; else its mean confidence."""
    with torch.no_grad():
        logits = classifier(images.clamp(-1, 1).float())
    probs = torch.softmax(logits, dim=1)
    if label is not None:
        correct = int((probs.argmax(1) == label).sum())
        return f"{correct}/{len(images)} read as {label}"
    predicted = classify(classifier, images.clamp(-1, 1))[0]
    return f"confidence {float(probs.max(1).values.mean()):.2f}, {len(np.unique(predicted))} classes"


def compare(
    models: Sequence[LoadedModel],
    samplers: Sequence[str],
    steps: Sequence[int],
    base: SamplerSettings,
    classifier: torch.nn.Module | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[CompareCell]:
    """Every (model, sampler, steps) cell from the same seeds; MNIST models also get a classifier score."""
    plan_work(models, samplers, steps, base.batch)
    cells, total = [], len(models) * len(samplers) * len(steps)
    for model in models:
        cap = DEFAULT_MAX_SIGMA if model.schedule.sigma_max > DEFAULT_MAX_SIGMA else None
        for sampler in samplers:
            for n in steps:
                if n > model.schedule.usable_steps(cap):
                    raise BadInputError(f"{model.entry.title} allows at most {model.schedule.usable_steps(cap)} steps.")
                settings = replace(base, sampler=sampler, steps=n, options={}, noise_until=None, max_sigma=cap)
                result = run_sampler(model, settings, every=n + 1, keep=1)
                is_mnist = model.entry.data == "mnist" and model.sample_shape == (1, 28, 28)
                metric = (
                    mnist_score(classifier, result.images, base.label) if classifier is not None and is_mnist else None
                )
                cells.append(
                    CompareCell(model.entry.name, sampler, n, settings.nfe, result.seconds, result.images, metric)
                )
                if progress is not None:
                    progress(len(cells) / total, f"{model.entry.name}: {sampler}, {n} steps")
    return cells
