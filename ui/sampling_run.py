"""Running a sampler on a zoo model for the pages: settings, seeds, conditioning, timing (no Streamlit calls).

Image k of a batch draws its starting noise and all its sampler noise from its own generator seeded with
seed + k, so any image can be regenerated alone with batch 1 and seed + k.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.denoisers import Denoiser, clip_denoised
from core.grids import make_grid, to_uint8
from core.samplers import SAMPLERS, sample
from core.trajectory import Frame, TrajectoryRecorder, display_every
from zoo.loaders import LoadedModel

MAX_BATCH = 64


@dataclass(frozen=True)
class SamplerSettings:
    sampler: str = "dpmpp_2m"
    steps: int = 20
    spacing: str = "trailing"
    options: dict[str, Any] = field(default_factory=dict)
    noise_until: int | None = None
    max_sigma: float | None = None
    seed: int = 0
    batch: int = 16
    label: int | None = None  # a class for class-conditional models; None = unconditional
    guidance: float = 1.0
    clip: bool = True  # clamp each predicted x_0 to the data range [-1, 1], as DDPM's reference sampler does

    @property
    def nfe(self) -> int:
        return SAMPLERS[self.sampler].nfe(self.steps)


@dataclass
class SamplingResult:
    images: torch.Tensor  # [B, C, H, W] in the model's data range
    recorder: TrajectoryRecorder
    seconds: float
    settings: SamplerSettings

    def grid(self) -> np.ndarray:
        return make_grid(to_uint8(self.images))


def conditioned(loaded: LoadedModel, settings: SamplerSettings, batch: int) -> Denoiser:
    """The model's denoiser with the chosen class (and guidance) bound in, clipped if asked."""
    bound = _with_class(loaded, settings, batch)
    return clip_denoised(bound) if settings.clip and loaded.entry.family == "pixel" else bound


def _with_class(loaded: LoadedModel, settings: SamplerSettings, batch: int) -> Denoiser:
    denoiser = loaded.denoiser
    assert denoiser is not None
    if not loaded.num_classes:
        return denoiser
    null = loaded.entry.null_label
    if settings.label is None:
        # a conditional-only model has no unconditional mode: spread the batch over the classes instead
        labels = torch.arange(batch) % loaded.num_classes if null is None else torch.full((batch,), int(null))
        return lambda x, sigma: denoiser(x, sigma, class_labels=labels)
    labels = torch.full((batch,), int(settings.label))
    if settings.guidance != 1.0 and loaded.supports_guidance:
        guided = loaded.guided(settings.guidance)
        return lambda x, sigma: guided(x, sigma, class_labels=labels)
    return lambda x, sigma: denoiser(x, sigma, class_labels=labels)


def sigma_grid(loaded: LoadedModel, settings: SamplerSettings) -> torch.Tensor:
    assert loaded.schedule is not None
    return loaded.schedule.sampling_sigmas(settings.steps, settings.spacing, max_sigma=settings.max_sigma)


def start_noise(
    shape: tuple[int, ...], seeds: list[int], sigma_max: float
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Starting noise sigma_max * z, image k from its own generator (which then also feeds the sampler)."""
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    x = torch.cat([torch.randn((1, *shape), generator=g) for g in gens]) * sigma_max
    return x, gens


def run_sampler(
    loaded: LoadedModel,
    settings: SamplerSettings,
    on_frame: Callable[[Frame], None] | None = None,
    keep: int = 16,
    every: int | None = None,
) -> SamplingResult:
    """Sample settings.batch images; `on_frame` sees a recorded frame about 25 times per run."""
    sigmas = sigma_grid(loaded, settings)
    seeds = [settings.seed + k for k in range(settings.batch)]
    x, gens = start_noise(loaded.sample_shape, seeds, float(sigmas[0]))
    x = x.to(loaded.device)
    recorder = TrajectoryRecorder(settings.steps, every or display_every(settings.steps), keep, on_frame)
    options = dict(settings.options)
    if settings.noise_until is not None:
        options["noise_until"] = settings.noise_until
    start = time.perf_counter()
    images = sample(
        settings.sampler,
        conditioned(loaded, settings, settings.batch),
        x,
        sigmas,
        generator=gens,
        callback=recorder,
        **options,
    )
    return SamplingResult(images.cpu(), recorder, time.perf_counter() - start, settings)
