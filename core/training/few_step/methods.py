"""The few-step methods by name, and one way to build any of them, so that a lab compares them alike: the same
data (`batches`), network size (`net`, the teacher's MLPConfig; shortcut and MeanFlow add the span input),
budget (`total_steps`, the config's batch size) and seed (the config's, which also seeds fresh networks).

The distillations (consistency distillation, progressive) start from the teacher's weights; the others
(consistency training, shortcut, MeanFlow) learn from the data alone, from a fresh network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.errors import BadInputError
from core.models.mlp import MLPConfig
from core.training.diffusion import BatchFn, TrainConfig
from core.training.few_step.base import FewStepTrainer, euler_sample, net_velocity
from core.training.few_step.consistency import ConsistencyDistillation, ConsistencyTraining
from core.training.few_step.meanflow import MeanFlow
from core.training.few_step.progressive import ProgressiveDistillation
from core.training.few_step.shortcut import Shortcut

METHODS: dict[str, type[FewStepTrainer]] = {
    cls.method: cls
    for cls in (ConsistencyDistillation, ConsistencyTraining, Shortcut, MeanFlow, ProgressiveDistillation)
}
TITLES = {
    "consistency_distillation": "Consistency distillation",
    "consistency_training": "Consistency training",
    "shortcut": "Shortcut model",
    "meanflow": "MeanFlow",
    "progressive": "Progressive distillation",
}
NEEDS_TEACHER = ("consistency_distillation", "progressive")
# the options each constructor takes from the run as a whole (the rest are the method's own)
_RUN_ARGS = {
    "consistency_distillation": ("teacher",),
    "consistency_training": ("total_steps",),
    "shortcut": (),
    "meanflow": (),
    "progressive": ("teacher", "total_steps"),
}


def few_step_trainer(
    method: str,
    *,
    net: MLPConfig,
    config: TrainConfig,
    batches: BatchFn,
    total_steps: int,
    teacher: nn.Module | None = None,
    **options: Any,
) -> FewStepTrainer:
    """A trainer of `method` (a key of METHODS) for a run of `total_steps` steps; `teacher` is a trained
    flow-matching network of config `net` (the distillations need it); `options` are the method's own keywords."""
    cls = METHODS.get(method)
    if cls is None:
        raise BadInputError(f"Unknown few-step method {method!r}; choose one of {', '.join(METHODS)}.")
    if teacher is not None and getattr(teacher, "config", net) != net:
        raise BadInputError("The teacher's network must have the size the run asks for.")
    run = {"teacher": teacher, "total_steps": total_steps}
    return cls.create(net=net, config=config, batches=batches, **{k: run[k] for k in _RUN_ARGS[method]}, **options)


def teacher_sample(teacher: nn.Module, noise: torch.Tensor, nfe: int) -> torch.Tensor:
    """The flow teacher's own Euler samples in `nfe` even steps: what every few-step method is measured against."""
    with torch.inference_mode():
        return euler_sample(lambda x, t: net_velocity(teacher, x, t), noise, nfe)
