"""Sampling an image model for the Samplers and Compare checkpoints pages: settings, per-image seeds,
conditioning, what a run costs (no Streamlit calls).

Image k of a batch draws its starting noise and all its sampler noise from its own generator seeded with
seed + k, so any image can be regenerated alone with batch 1 and seed + k. The model is anything shaped like
`ImageModel` (the zoo's LoadedModel is one), so this module needs nothing above core. A run's cost is estimated
before it starts from its FLOPs and the speed the model reaches here lately (`seconds_per_image`, core/cost.py),
and a run that is part of a page's job stops at that job's deadline (core/training/budget.limited).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch

from core import cost
from core.diffusion.denoisers import Denoiser, clip_denoised, threshold_denoised, with_labels
from core.diffusion.fitted_grids import REFINEMENTS, optimise_grid
from core.diffusion.guidance import Guidance, as_guidance
from core.diffusion.samplers import SAMPLERS, Step, sample
from core.diffusion.schedules import NoiseSchedule
from core.diffusion.trajectory import Frame, TrajectoryRecorder, display_every
from core.errors import BadInputError
from core.training.budget import check_deadline

MAX_BATCH = 64
TYPED = "typed"  # the spacing of a grid typed as noise levels
TIMING_BOUND_S = 0.5  # the longest an evaluation may be expected to take for `seconds_per_image` to run one


class ImageModel(Protocol):
    """What sampling needs to know of an image model."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def data(self) -> str | None: ...  # the data set it learnt (e.g. "mnist"), for the classifier scores
    @property
    def denoiser(self) -> Denoiser | None: ...
    @property
    def schedule(self) -> NoiseSchedule | None: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def sample_shape(self) -> tuple[int, ...]: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def null_label(self) -> int | None: ...  # the "no class" label of a model trained for guidance
    @property
    def flops_per_image(self) -> int | None: ...  # one evaluation of one image (None: not counted)


@dataclass(frozen=True, kw_only=True)
class SamplerSettings:
    sampler: str = "dpmpp_2m"
    steps: int = 20
    spacing: str = "trailing"  # a NoiseSchedule spacing, or TYPED: the noise levels in `grid`
    grid: tuple[float, ...] | None = None  # a typed grid (core/diffusion/grids.custom_sigmas): steps sigmas, then 0
    options: dict[str, Any] = field(default_factory=dict)
    noise_until: int | None = None
    max_sigma: float | None = None
    seed: int = 0
    batch: int = 16
    label: int | None = None  # a class for class-conditional models; None = unconditional
    guidance: float | Guidance = 1.0  # a scale: classifier-free guidance; or any method (core/diffusion/guidance)
    guidance_interval: tuple[float, float] | None = None  # a scale's: guide only for sigma in (low, high]
    guide: str | None = None  # autoguidance's weaker model (its name; callers pass its denoiser as `guide`)
    spread_classes: bool = False  # sample k asks for class k mod num_classes (guided), e.g. for a guidance sweep
    clip: bool = True  # clamp each predicted x_0 to the data range [-1, 1], as DDPM's reference sampler does
    clip_range: float = 1.0  # clip to [-clip_range, clip_range] (diffusers' clip_sample_range)
    thresholding: tuple[float, float] | None = None  # dynamic thresholding (ratio, max value), in place of clip
    steps_offset: int = 0  # added to leading timesteps (diffusers' steps_offset)
    one_more: bool = False  # DPM-Solver's leading/linspace: n + 1 timesteps, the lowest dropped
    to_zero: bool = True  # False: the grid ends at the schedule's smallest sigma (set_alpha_to_one = false)

    @property
    def nfe(self) -> int:
        return SAMPLERS[self.sampler].nfe(self.steps, self.options)

    @property
    def guiding(self) -> Guidance:
        """The guidance as one object: a scale alone is CFG in `guidance_interval`."""
        return as_guidance(self.guidance, self.guidance_interval)

    def __hash__(self) -> int:
        """Settings are keys of what was made with them (ui/common/memo.py); the sampler's options are a dict,
        hashed by its items."""
        fields = {**vars(self), "options": tuple(sorted(self.options.items()))}
        return hash(tuple(fields.values()))


@dataclass(frozen=True, kw_only=True)
class FolderScheduler:
    """What a model's own diffusers scheduler_config.json asks of sampling, read by zoo/loaders.folder_scheduler:
    the Atlas sampler that runs that scheduler's loop and its options, the timestep spacing, the end of the grid,
    clipping or dynamic thresholding. `followed` names what the loaded schedule and denoiser already honour
    (trained betas, zero terminal SNR, the prediction type); `unfollowed` holds one sentence per field the Atlas
    cannot follow, naming it. `folder_settings` turns it into sampler settings."""

    scheduler: str  # its _class_name
    sampler: str
    options: tuple[tuple[str, Any], ...] = ()
    spacing: str = "leading"
    steps_offset: int = 0
    one_more: bool = False
    to_zero: bool = True
    clip: float | None = None  # clip_sample_range where clip_sample is on
    thresholding: tuple[float, float] | None = None  # (dynamic_thresholding_ratio, sample_max_value)
    followed: tuple[str, ...] = ()
    unfollowed: tuple[str, ...] = ()
    steps: int | None = None  # the step count a few-step model was made for (its manifest's); None: any

    def caption(self) -> str:
        """One sentence of what came from the folder, e.g. "DDIM, leading spacing, steps_offset 1, clip x0 to ±1"."""
        parts = [SAMPLERS[self.sampler].title, f"{self.spacing} spacing"]
        if self.steps_offset:
            parts.append(f"steps_offset {self.steps_offset}")
        if self.one_more:
            parts.append("DPM-Solver's n + 1 timesteps")
        if not self.to_zero:
            parts.append("ending at the smallest σ")
        if self.thresholding is not None:
            parts.append(f"dynamic thresholding (ratio {self.thresholding[0]:g}, max {self.thresholding[1]:g})")
        elif self.clip is not None:
            parts.append(f"clip x0 to ±{self.clip:g}")
        else:
            parts.append("no clipping")
        parts += [f"{k} {v}" for k, v in self.options if k not in ("direction",)]
        return f"From the folder's scheduler_config.json ({self.scheduler}): {', '.join([*parts, *self.followed])}."


def folder_settings(model: ImageModel, base: SamplerSettings | None = None) -> SamplerSettings:
    """`base` (the defaults) with what the model's own scheduler config asks for (its `scheduler`, a
    FolderScheduler; a model without one keeps `base`): its sampler and options, spacing, steps_offset, the end
    of the grid, clipping or thresholding, the step count a few-step model was made for, and no cap on sigma (a
    pipeline starts at its schedule's top)."""
    base = base or SamplerSettings()
    folder: FolderScheduler | None = getattr(model, "scheduler", None)
    if folder is None:
        return base
    return replace(
        base,
        sampler=folder.sampler,
        options=dict(folder.options),
        spacing=folder.spacing,
        steps_offset=folder.steps_offset,
        one_more=folder.one_more,
        to_zero=folder.to_zero,
        clip=folder.clip is not None,
        clip_range=folder.clip if folder.clip is not None else 1.0,
        thresholding=folder.thresholding,
        steps=base.steps if folder.steps is None else folder.steps,
        max_sigma=None,
        noise_until=None,
    )


@dataclass(kw_only=True)
class SamplingResult:
    images: torch.Tensor  # [B, C, H, W] in the model's data range
    recorder: TrajectoryRecorder
    seconds: float
    settings: SamplerSettings


def conditioned(
    model: ImageModel,
    settings: SamplerSettings,
    batch: int,
    sigmas: torch.Tensor | None = None,
    guide: Denoiser | None = None,
) -> Denoiser:
    """The model's denoiser with the chosen class (and guidance, in its sigma interval) bound in, clipped to
    [-1, 1] if asked. Without a class, a model with a "no class" label samples unconditionally; one without
    spreads the batch over the classes (sample k asks for class k mod num_classes), as `spread_classes` does.
    CFG++ needs the run's grid `sigmas`; autoguidance the weaker model's denoiser `guide`."""
    denoiser = model.denoiser
    assert denoiser is not None
    if model.num_classes:
        null = model.null_label
        spread = settings.spread_classes or (settings.label is None and null is None)
        if spread or settings.label is not None:
            labels = torch.arange(batch) % model.num_classes if spread else torch.full((batch,), settings.label)
            guidance = settings.guiding if null is not None or settings.guiding.method == "auto" else 1.0
            denoiser = with_labels(denoiser, labels, guidance, null, guide=guide, sigmas=sigmas)
        else:
            denoiser = with_labels(denoiser, torch.full((batch,), null))
    if settings.thresholding is not None:
        return threshold_denoised(denoiser, *settings.thresholding)
    return clip_denoised(denoiser, -settings.clip_range, settings.clip_range) if settings.clip else denoiser


def seconds_per_image(model: ImageModel, batch: int = 2) -> float:
    """Seconds one denoiser evaluation of one image takes on this machine now, in calls of `batch` images: the
    model's FLOPs over the speed it reached lately at that batch (core/cost.py, fed by each of its evaluations,
    in any session's job). Without a recent one it is evaluated here, twice at most (a first call at a batch
    size is a warm-up), at the largest batch up to `batch` that the machine's speed says takes under
    TIMING_BOUND_S a call (a smaller batch is slower per image: a cautious stand-in); where even one image
    would take longer, the machine's speed stands in. No lock is held: other sessions' estimates and jobs go
    on meanwhile. A model without a FLOP count is timed at `batch`."""
    flops, device = getattr(model, "flops_per_image", None), model.device
    if not flops:
        return min(_timed(model, batch) for _ in range(2))
    rate = cost.model_rate(model.name, device, batch)
    probe = min(batch, int(TIMING_BOUND_S * cost.machine_rate(device) / flops)) if rate is None else 0
    if probe >= 1:
        rate, calls = cost.model_rate(model.name, device, probe), 0
        while rate is None and calls < 2:
            _timed(model, probe)  # its network reports the speed (core/cost.MeteredNetwork)
            rate, calls = cost.model_rate(model.name, device, probe), calls + 1
    return flops / (rate or cost.machine_rate(device))


def _timed(model: ImageModel, batch: int) -> float:
    """Seconds per image of one evaluation of `batch` images (an unconditional or spread batch)."""
    x = torch.zeros(batch, *model.sample_shape, device=model.device)
    sigma = torch.ones(batch, device=model.device)
    denoiser = conditioned(model, SamplerSettings(batch=batch), batch)
    with torch.inference_mode():
        tic = time.perf_counter()
        denoiser(x, sigma)
        return (time.perf_counter() - tic) / batch


def sampling_seconds(model: ImageModel, settings: SamplerSettings) -> float:
    """About how long sampling settings.batch images with `settings` takes on this machine now."""
    return settings.batch * evaluations_per_image(model, settings) * seconds_per_image(model, settings.batch)


def evaluations_per_image(model: ImageModel, settings: SamplerSettings) -> int:
    """Denoiser evaluations one image of a run costs: its NFE, doubled where guidance runs the conditional
    prediction and a reference one (the unconditional half, or autoguidance's weaker model: counted as a whole
    evaluation, an upper bound), as `conditioned` binds them."""
    return settings.nfe * guided_calls(model, settings)


def guided_calls(model: ImageModel, settings: SamplerSettings) -> int:
    """Predictions per image per denoiser call: 2 where `conditioned` guides (a class asked for, or the classes
    spread over the batch, on a model with a "no class" label or under autoguidance), else 1."""
    if not model.num_classes or (settings.label is None and not settings.spread_classes):
        return 1
    g = settings.guiding
    return g.calls if model.null_label is not None or g.method == "auto" else 1


def check_guide(model: ImageModel, guide: ImageModel) -> None:
    """Refuse a guide for autoguidance that does not draw what `model` draws: the same sample shape and the same
    classes (a weaker model of the same data)."""
    if guide.num_classes != model.num_classes or tuple(guide.sample_shape) != tuple(model.sample_shape):
        shape = "x".join(map(str, model.sample_shape))
        raise BadInputError(
            f"{guide.title} cannot guide {model.title}: a guide must be class-conditional on the same "
            f"{model.num_classes} classes and draw {shape} samples."
        )


def sampling_sigmas(model: ImageModel, settings: SamplerSettings) -> torch.Tensor:
    """The grid the settings ask for: the schedule's spacing, or the typed grid as it is."""
    assert model.schedule is not None
    if settings.spacing == TYPED:
        if settings.grid is None:
            raise BadInputError("Type the grid's noise levels (largest first) to sample on a typed grid.")
        return torch.tensor(settings.grid, dtype=torch.float64)
    return model.schedule.sampling_sigmas(
        settings.steps,
        settings.spacing,
        max_sigma=settings.max_sigma,
        steps_offset=settings.steps_offset,
        one_more=settings.one_more,
        to_zero=settings.to_zero,
    )


def start_noise(
    shape: tuple[int, ...], seeds: list[int], sigma_max: float
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Starting noise sigma_max * z, image k from its own generator (which then also feeds the sampler)."""
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    x = torch.cat([torch.randn((1, *shape), generator=g) for g in gens]) * sigma_max
    return x, gens


def run_sampler(
    model: ImageModel,
    settings: SamplerSettings,
    on_frame: Callable[[Frame], None] | None = None,
    keep: int = 16,
    every: int | None = None,
    on_step: Callable[[int], None] | None = None,
    guide: Denoiser | None = None,
) -> SamplingResult:
    """Sample settings.batch images (autoguidance guided by `guide`, a weaker model's denoiser); `on_frame`
    sees a recorded frame about 25 times per run, `on_step` the index of every step. Run as (part of) a job
    (core/training/budget.limited), it raises TimeLimitError after the step that passes the job's deadline (a
    zoo model's network also checks before each evaluation); the frames and steps seen so far are the
    caller's to keep."""
    sigmas = sampling_sigmas(model, settings)
    seeds = [settings.seed + k for k in range(settings.batch)]
    x, gens = start_noise(model.sample_shape, seeds, float(sigmas[0]))
    x = x.to(model.device)
    recorder = TrajectoryRecorder(
        total_steps=settings.steps,
        every=every or display_every(settings.steps),
        keep=keep,
        on_frame=on_frame,
        on_step=on_step,
    )
    options = dict(settings.options)
    if settings.noise_until is not None:
        options["noise_until"] = settings.noise_until

    def step(info: Step) -> None:
        recorder(info)
        check_deadline()

    start = time.perf_counter()
    images = sample(
        settings.sampler,
        conditioned(model, settings, settings.batch, sigmas, guide),
        x,
        sigmas,
        generator=gens,
        callback=step,
        **options,
    )
    if float(sigmas[-1]) > 0:  # a grid that ends above 0 ends at x_t on the schedule's own path, as a pipeline's
        images = images * model.schedule.signal_and_noise(sigmas[-1])[0].to(images.dtype)
    return SamplingResult(
        images=images.cpu(), recorder=recorder, seconds=time.perf_counter() - start, settings=settings
    )


# ---- a step grid searched for one model, sampler and step count ----------------------------------------------

TEACHER = ("unipc", 100)  # the fine run the searched grid is measured against: UniPC-3 on 100 log-SNR steps
SEARCH_IMAGES = 8
SEARCH_SWEEPS, SEARCH_CANDIDATES = 1, 6  # one pass over the inner points: a page's search stays under a minute
HAND_GRIDS = ("trailing", "karras", "log-snr")


@dataclass(kw_only=True)
class GridSearch:
    """The searched grid beside the hand-made ones, each with its RMS distance (per pixel) to the teacher's end
    points from the same warm-up noise."""

    grids: dict[str, torch.Tensor]  # spacing name or "searched" -> n sigmas then 0
    errors: dict[str, float]
    settings: SamplerSettings
    images: int
    seconds: float


def search_evaluations(
    model: ImageModel,
    settings: SamplerSettings,
    images: int,
    sweeps: int = SEARCH_SWEEPS,
    candidates: int = SEARCH_CANDIDATES,
) -> int:
    """Image evaluations a grid search costs: the teacher, the hand-made grids, and per inner point and sweep the
    candidates and their REFINEMENTS (core/diffusion/fitted_grids.optimise_grid), each a whole run of the sampler."""
    runs_per_point = candidates + (candidates + 1) * REFINEMENTS
    runs = len(HAND_GRIDS) + 1 + sweeps * max(0, settings.steps - 2) * runs_per_point
    return images * guided_calls(model, settings) * (TEACHER[1] + runs * settings.nfe)


def search_seconds(model: ImageModel, settings: SamplerSettings, images: int) -> float:
    """About how long `GridSearcher(...).search()` takes on this machine now."""
    return search_evaluations(model, settings, images) * seconds_per_image(model, images)


class GridSearcher:
    """A teacher run once from `images` warm-up noises (seeds apart from the page's), then the grid of the
    settings' sampler, options and steps that comes closest to its end points: a direct search
    (core/diffusion/fitted_grids.optimise_grid) from the closest of the hand-made grids, its ends held (the
    trailing grid's last sigma is its own). Guidance and clipping as the settings say (autoguidance's weaker
    model: `guide`). The noise starts at the schedule's (capped) top, as the hand-made grids do."""

    def __init__(
        self, model: ImageModel, settings: SamplerSettings, images: int = SEARCH_IMAGES, guide: Denoiser | None = None
    ) -> None:
        assert model.schedule is not None
        self.model, self.settings, self.images, self.guide = model, settings, images, guide
        self.top = settings.max_sigma or model.schedule.sigma_max
        g = torch.Generator().manual_seed(2**31 - 1)
        self.noise = torch.randn((images, *model.sample_shape), generator=g).to(model.device)
        solver, steps = TEACHER
        fine = model.schedule.sampling_sigmas(min(steps, model.schedule.num_steps), "log-snr", max_sigma=self.top)
        self.target = self.run(solver, fine.float(), {})

    def run(self, solver: str, grid: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        check_deadline()
        denoiser = conditioned(self.model, self.settings, self.images, grid, self.guide)  # CFG++: each run's grid
        return sample(solver, denoiser, self.noise * float(grid[0]), grid.to(self.noise.device), **options)

    def error(self, grid: torch.Tensor, settings: SamplerSettings) -> float:
        """RMS distance per pixel of the settings' sampler (with its options) on `grid` to the teacher."""
        out = self.run(settings.sampler, grid.float(), dict(settings.options))
        return float((out - self.target).pow(2).mean().sqrt())

    def search(
        self,
        settings: SamplerSettings | None = None,
        sweeps: int = SEARCH_SWEEPS,
        candidates: int = SEARCH_CANDIDATES,
        progress: Callable[[int, int], None] | None = None,
    ) -> GridSearch:
        """The searched grid for the sampler, options and steps of `settings` (those it was made with by default;
        the teacher's conditioning stays its own)."""
        settings = settings or self.settings
        schedule = self.model.schedule
        assert schedule is not None
        tic = time.perf_counter()
        grids = {s: schedule.sampling_sigmas(settings.steps, s, max_sigma=self.top) for s in HAND_GRIDS}
        errors = {name: self.error(g, settings) for name, g in grids.items()}
        start = grids[min(HAND_GRIDS, key=errors.__getitem__)]
        grids["searched"] = optimise_grid(
            lambda g: self.error(g, settings), start, sweeps=sweeps, candidates=candidates, progress=progress
        )
        errors["searched"] = self.error(grids["searched"], settings)
        return GridSearch(
            grids=grids, errors=errors, settings=settings, images=self.images, seconds=time.perf_counter() - tic
        )
