"""Comparing samplers and checkpoints from the same noise (no Streamlit calls).

- Same-seed grids: every (model, sampler, step count) cell starts from the same seeds, timed, and for MNIST
  models read by the bundled classifier (the Samplers page's Compare tab).
- Quality on demand: n samples per checkpoint scored against held-out digits, FD-LeNet, precision, recall, density
  and coverage, and class shares (the Compare checkpoints page); under torchrun the ranks share out the chunks of
  samples (`sample_sharded`, for `zoo compare`).
Work is capped before it starts (cells, image evaluations, samples, the time they would take); run as a page's job
(core/training/budget.limited), it stops at the job's deadline, and what it finished is the caller's to keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from core.data.images import uint8_to_tensor
from core.diffusion.denoisers import Denoiser
from core.errors import BadInputError
from core.labs.samplers import (
    TYPED,
    ImageModel,
    SamplerSettings,
    evaluations_per_image,
    folder_settings,
    run_sampler,
    sampling_seconds,
    seconds_per_image,
)
from core.limits import max_compare_work, max_quality_work
from core.metrics.images import class_histogram, classify, frechet_distance_se
from core.metrics.prdc import PRDC, prdc
from core.text import plain_label
from core.training import budget
from core.training.distributed import DistContext, gather_shares, share

MAX_CELLS = 24
MAX_QUALITY_SAMPLES = 1000
GUIDANCE = 3.0  # the classifier-free guidance scale checkpoints are compared at, when a class is asked for
CHUNK = 100
PRDC_K = 5  # the neighbours of the precision/recall/density/coverage balls (Naeem et al.'s default)
PRDC_SEED = 0  # which held-out digits the PRDC of n samples is measured against: the same for every checkpoint
PRDC_MEASURES = ("precision", "precision_se", "recall", "recall_se", "density", "density_se", "coverage", "coverage_se")


def is_mnist(model: ImageModel) -> bool:
    """Whether the bundled MNIST classifier can read this model's samples."""
    return model.data == "mnist" and tuple(model.sample_shape) == (1, 28, 28)


# ---- same-seed grids -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CompareCell:
    model: str
    sampler: str
    steps: int
    nfe: int
    seconds: float
    images: torch.Tensor
    metric: str | None


def plan_work(
    models: Sequence[ImageModel], samplers: Sequence[str], steps: Sequence[int], base: SamplerSettings
) -> int:
    """Model evaluations x images the comparison will cost (base.batch images a cell, guidance counted); refuses
    plans over the caps with a sentence: cells, evaluations, and the time they take with these models on this
    machine (the server's limit per job: a large UNet costs far more a step than an MNIST one)."""
    cells = len(models) * len(samplers) * len(steps)
    if cells == 0:
        raise BadInputError("Pick at least one sampler and one step count.")
    if cells > MAX_CELLS:
        raise BadInputError(f"That is {cells} cells; compare at most {MAX_CELLS} at once.")
    if base.spacing == TYPED:
        raise BadInputError("A same-seed grid varies the steps, which a typed grid fixes: pick another spacing.")
    runs = [replace(base, sampler=s, steps=n) for s in samplers for n in steps]
    work = sum(base.batch * evaluations_per_image(m, r) for m in models for r in runs)
    if work > (limit := max_compare_work()):
        raise BadInputError(
            f"That comparison needs {work:,} image evaluations (at most {limit:,}); use fewer images or steps."
        )
    seconds = sum(sampling_seconds(m, r) for m in models for r in runs)
    budget.check(seconds, "comparison", "fewer images, steps or checkpoints")
    return work


def plan_quality(models: Sequence[ImageModel], settings: SamplerSettings, n: int) -> int:
    """Model evaluations x images that measuring n samples of each model costs; refused over the cap, and over
    the server's limit per job by the time it would take (as plan_work)."""
    work = sum(n * evaluations_per_image(m, settings) for m in models)
    if work > (limit := max_quality_work()):
        raise BadInputError(
            f"Measuring that needs {work:,} image evaluations (at most {limit:,}); use fewer samples, "
            "steps or checkpoints."
        )
    seconds = sum(n * evaluations_per_image(m, settings) * seconds_per_image(m, min(n, CHUNK)) for m in models)
    budget.check(seconds, "measure", "fewer samples, steps or checkpoints")
    return work


def check_same_shape(shapes: Mapping[str, Sequence[int]]) -> None:
    """Checkpoints compared from one noise must make images of one shape (name -> shape); else a sentence."""
    if len({tuple(shape) for shape in shapes.values()}) > 1:
        listed = ", ".join(f"{plain_label(name)}: {'x'.join(map(str, shape))}" for name, shape in shapes.items())
        raise BadInputError(
            f"These checkpoints make images of different shapes, so they cannot share noise ({listed})."
        )


def check_steps(models: Mapping[str, ImageModel], steps: int) -> None:
    """Every model's schedule must allow `steps` sampling steps below its sampling cap; else a sentence."""
    for name, model in models.items():
        usable = model.schedule.usable_steps(model.schedule.sampling_cap)
        if steps > usable:
            raise BadInputError(f"{plain_label(name)} allows at most {usable} steps.")


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


def compare_cells(
    models: Sequence[ImageModel],
    samplers: Sequence[str],
    steps: Sequence[int],
    base: SamplerSettings,
    classifier: torch.nn.Module | None = None,
    guide: Denoiser | None = None,
) -> Iterator[CompareCell]:
    """Every (model, sampler, steps) cell from the same seeds, one at a time (a caller can stop between cells
    and keep those done), autoguidance guided by `guide`; MNIST models also get a classifier score. The whole
    plan is checked first. The cells run under the deadline of the job that asks for them (a generator runs in
    its caller's context)."""
    plan_work(models, samplers, steps, base)
    check_steps({m.title: m for m in models}, max(steps))
    for model in models:
        cap = model.schedule.sampling_cap
        for sampler in samplers:
            for n in steps:
                settings = replace(base, sampler=sampler, steps=n, options={}, noise_until=None, max_sigma=cap)
                result = run_sampler(model, settings, every=n + 1, keep=1, guide=guide)
                scored = classifier is not None and is_mnist(model)
                yield CompareCell(
                    model=model.name,
                    sampler=sampler,
                    steps=n,
                    nfe=settings.nfe,
                    seconds=result.seconds,
                    images=result.images,
                    metric=mnist_score(classifier, result.images, base.label) if scored else None,
                )


# ---- quality on demand ----------------------------------------------------------------------------------


def settings_for(
    model: ImageModel, sampler: str | None, steps: int, seed: int, batch: int, label: int | None
) -> SamplerSettings:
    """The same noise for every checkpoint; the class only for class-conditional ones. A model with its own
    scheduler config is sampled as it says (`folder_settings`: sampler, spacing, clipping, and a few-step model's
    own step count in place of `steps`), with `sampler` (and `steps`) in place of its own where one is named; the
    others with `sampler` (DPM-Solver++(2M) if None)."""
    assert model.schedule is not None
    base = SamplerSettings(
        sampler=sampler or "dpmpp_2m",
        steps=steps,
        max_sigma=model.schedule.sampling_cap,
        seed=seed,
        batch=batch,
        label=label if model.num_classes else None,
        guidance=GUIDANCE,
    )
    settings = folder_settings(model, base)
    if sampler is not None:  # a sampler named here replaces the folder's, and its step count with it
        settings = replace(settings, steps=steps)
        if settings.sampler != sampler:
            settings = replace(settings, sampler=sampler, options={})
    return settings


@dataclass(frozen=True, kw_only=True)
class Quality:
    samples: int
    fd_lenet: float
    fd_se: float  # bootstrap standard error of fd_lenet
    prdc: PRDC | None  # precision, recall, density, coverage with SEs (see `score`); None under PRDC_K + 1 samples
    accuracy: float | None  # share read as the requested class (conditional runs)
    smallest_class: float  # smallest class share (unconditional runs: near 10% is healthy)
    largest_class: float

    def fields(self) -> dict[str, float | int | None]:
        """The measures as one flat row, the PRDC's beside FD-LeNet's (its k, and how many samples and held-out digits
        it compared, each, as prdc_k and prdc_n; None throughout without a PRDC): what a CSV or JSON export writes."""
        measures = {} if self.prdc is None else asdict(self.prdc)
        return {
            "samples": self.samples,
            "fd_lenet": self.fd_lenet,
            "fd_se": self.fd_se,
            **{name: measures.get(name) for name in PRDC_MEASURES},
            "prdc_k": measures.get("k"),
            "prdc_n": measures.get("real"),
            "accuracy": self.accuracy,
            "smallest_class": self.smallest_class,
            "largest_class": self.largest_class,
        }


def held_out_features(classifier: torch.nn.Module, images_uint8: np.ndarray) -> np.ndarray:
    """The classifier's penultimate features of held-out digits (uint8 [N, 1, 28, 28]): FD-LeNet's reference."""
    return classify(classifier, uint8_to_tensor(images_uint8))[1]


def chunk_count(n: int) -> int:
    """How many chunks of at most CHUNK images n images are drawn in."""
    return -(-n // CHUNK)


def _sample_chunks(
    model: ImageModel,
    settings: SamplerSettings,
    n: int,
    chunks: Sequence[int],
    progress: Callable[[float], None] | None,
    guide: Denoiser | None,
) -> tuple[list[torch.Tensor], float]:
    """The chunks numbered `chunks` of n images (chunk k: images k * CHUNK on, from seed settings.seed + k * CHUNK)
    and the seconds spent sampling them; `progress` sees the share of these chunks' images done after every step."""
    starts = [k * CHUNK for k in chunks]
    total = sum(min(CHUNK, n - start) for start in starts)
    images, seconds, done = [], 0.0, 0
    for start in starts:
        chunk = replace(settings, seed=settings.seed + start, batch=min(CHUNK, n - start))

        def on_step(i: int, done: int = done, size: int = chunk.batch) -> None:
            if progress is not None:
                progress((done + size * (i + 1) / settings.steps) / total)

        result = run_sampler(model, chunk, every=chunk.steps + 1, keep=1, on_step=on_step, guide=guide)
        images.append(result.images)
        seconds += result.seconds
        done += chunk.batch
    return images, seconds


def sample_many(
    model: ImageModel,
    settings: SamplerSettings,
    n: int,
    progress: Callable[[float], None] | None = None,
    guide: Denoiser | None = None,
) -> tuple[torch.Tensor, float]:
    """n images in chunks of CHUNK (seeds seed, seed + 100, ...: the first chunk is the grid `settings` draws)
    and the seconds spent sampling; `progress` sees the share done after every step; `guide`: autoguidance's
    weaker model."""
    images, seconds = _sample_chunks(model, settings, n, range(chunk_count(n)), progress, guide)
    return torch.cat(images), seconds


def sample_sharded(
    model: ImageModel,
    settings: SamplerSettings,
    n: int,
    ctx: DistContext,
    progress: Callable[[float], None] | None = None,
    guide: Denoiser | None = None,
) -> tuple[torch.Tensor | None, float]:
    """`sample_many`'s n images drawn by the ranks of a torchrun job (ctx: core/training/distributed.setup): chunk
    k, the very chunk and seeds `sample_many` draws, by rank k % world_size, the images gathered on rank 0 in
    chunk order (on the CPU). Rank 0 gets them and the wall time of it all, the gather included; the other ranks
    None and their own wall time; `progress` sees the share of this rank's images done. Every rank must call it.
    With one process, `sample_many` itself."""
    if ctx.world_size == 1:
        return sample_many(model, settings, n, progress, guide)
    start = time.perf_counter()
    count = chunk_count(n)
    mine, _ = _sample_chunks(model, settings, n, share(count, ctx), progress, guide)
    gathered = gather_shares([images.cpu() for images in mine], count, ctx)
    images = None if gathered is None else torch.cat(gathered)
    return images, time.perf_counter() - start


def prdc_reference(reference: np.ndarray, n: int) -> np.ndarray:
    """n rows of the held-out features (at most all of them), one fixed draw (PRDC_SEED) so that every checkpoint
    measured on n samples meets the same digits: PRDC compares sets of one size (core/metrics/prdc.py; against all
    10,000 held-out digits, 300 samples would cover few of their small balls whatever their quality)."""
    if n >= len(reference):
        return reference
    return reference[torch.randperm(len(reference), generator=torch.Generator().manual_seed(PRDC_SEED))[:n].numpy()]


def score(images: torch.Tensor, label: int | None, classifier: torch.nn.Module, reference: np.ndarray) -> Quality:
    """FD-LeNet (with its bootstrap SE) of images [n, 1, 28, 28] in [-1, 1] against held-out features; precision,
    recall, density and coverage (with their SEs) of m = min(n, held-out digits) samples against m held-out digits
    (`prdc_reference`; none when m < PRDC_K + 1); and how the classifier reads them: the share of the requested
    class (if any), the smallest and largest class."""
    labels, feats = classify(classifier, images.clamp(-1, 1))
    hist = class_histogram(labels)
    fd, se = frechet_distance_se(feats, reference)
    m = min(len(feats), len(reference))  # PRDC's two sets of one size
    return Quality(
        samples=len(images),
        fd_lenet=fd,
        fd_se=se,
        prdc=prdc(prdc_reference(reference, m), feats[:m], PRDC_K) if m > PRDC_K else None,
        accuracy=float((labels == label).mean()) if label is not None else None,
        smallest_class=float(hist.min()),
        largest_class=float(hist.max()),
    )


def measure(
    model: ImageModel,
    settings: SamplerSettings,
    n: int,
    classifier: torch.nn.Module,
    reference: np.ndarray,
    progress: Callable[[float], None] | None = None,
) -> Quality:
    """n samples (at most MAX_QUALITY_SAMPLES) scored against held-out features (see `score`)."""
    images, _ = sample_many(model, settings, max(2, min(n, MAX_QUALITY_SAMPLES)), progress)
    return score(images, settings.label, classifier, reference)


# ---- export ---------------------------------------------------------------------------------------------


def captioned(panels: Sequence[tuple[str, np.ndarray]], stack: bool = False, gap: int = 10) -> np.ndarray:
    """Images (uint8 [H, W, C], e.g. each checkpoint's tile) with a caption above each, side by side (or one
    under another with `stack`), on white: the grid a person downloads or the command line writes."""
    from PIL import Image, ImageDraw

    if not panels:
        raise BadInputError("There is nothing to export yet.")
    line = 16
    rgb = [np.repeat(p, 3, axis=-1) if p.shape[-1] == 1 else p for _, p in panels]
    heights, widths = [p.shape[0] + line for p in rgb], [p.shape[1] for p in rgb]
    if stack:
        size = (max(widths) + 2 * gap, sum(heights) + gap * (len(rgb) + 1))
    else:
        size = (sum(widths) + gap * (len(rgb) + 1), max(heights) + 2 * gap)
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    x, y = gap, gap
    for (title, _), image in zip(panels, rgb, strict=True):
        draw.text((x, y), title[:80], fill="black")
        canvas.paste(Image.fromarray(image), (x, y + line))
        if stack:
            y += image.shape[0] + line + gap
        else:
            x += image.shape[1] + gap
    return np.asarray(canvas)
