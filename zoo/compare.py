"""`python -m zoo compare A B [C D]`: checkpoints side by side from the same noise, without a browser (a GPU box).

Each of A..D is, in this order of trying: a zoo model name; RUN@STEP, a run's checkpoint (RUN a run folder, or
a training output holding run/); an existing local path (a diffusers UNet or pipeline folder, a training
checkpoint-N/ folder, or a .safetensors file with its config.json beside it: zoo/local.py); a Hub repo id.
The person at the shell names their own files, so local paths are not held to the app's allowed roots.

Writes into --out: grid.png (each checkpoint's first 64 images under its name), results.csv and results.json
(timings, parameters, file sizes, and with --metrics, of every image sampled: FD-LeNet, precision, recall, density
and coverage (against as many held-out digits as images, k = 5), each with its standard error, and class shares,
for MNIST models: zoo entries and runs that say so, and with --mnist any local 1x28x28 model). Every checkpoint
starts from the same noise (the seeds, as the Compare checkpoints page draws them).

Under torchrun the ranks share the sampling: `torchrun --standalone --nproc_per_node 2 -m zoo compare A B --images
1000 --metrics` (gloo on the CPU; nccl with one GPU per rank, cuda:LOCAL_RANK, with --device cuda). Every rank
checks the arguments (before any collective, so a bad one stops every rank with the same sentence) and loads
every checkpoint; each draws chunk k of 100 images when k % N is its rank, the very chunks and seeds one process
draws (bit-identical images on the CPU, whatever N), and rank 0 gathers them in order, scores them and alone
writes the files, one grid and one table as one process's but for the timings: `ranks` says N, and
sample_seconds is rank 0's wall time of the shared sampling, the gather included. The other ranks write nothing
and print only errors.
"""

from __future__ import annotations

import csv
import json
import re
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from core.data.images import enlarge, tile, to_uint8
from core.device import check_device
from core.diffusion.samplers import SAMPLERS
from core.errors import AtlasError
from core.labs import provenance
from core.labs.compare import (
    captioned,
    check_same_shape,
    check_steps,
    held_out_features,
    is_mnist,
    sample_sharded,
    score,
    settings_for,
)
from core.labs.samplers import SamplerSettings
from core.runs.ours import saved_checkpoints
from core.runs.writer import hardware
from core.text import plain_label
from core.training import distributed
from zoo.datasets import load_image_set
from zoo.errors import BadInputError
from zoo.loaders import LoadedModel, hub_unet_entry, load_model
from zoo.local import local_entry
from zoo.registry import ModelEntry, Registry

MAX_IMAGES = 10_000
GRID_IMAGES = 64
MAX_FROM_BYTES = 64 * 2**20  # a grid PNG the Atlas wrote is far smaller
_RUN_STEP = re.compile(r"^(?P<run>.+)@(?P<step>[^@/]*)$")


def run_checkpoint(spec: str) -> Path | None:
    """The checkpoint folder RUN@STEP names (RUN a run folder, or a training output holding run/), None when `spec`
    is not of that form (or is an existing path); a sentence for a run or step that is not there."""
    match = _RUN_STEP.match(spec)
    if not match or Path(spec).expanduser().exists():  # a Hub id never holds '@'
        return None
    if not Path(match["run"]).exists():
        raise BadInputError(f"There is no run folder {plain_label(match['run'], 80)!r} (RUN@STEP).")
    if not match["step"].isdecimal() or not match["step"].isascii():
        step = plain_label(match["step"], 20)
        raise BadInputError(f"{spec!r} names step {step!r}; a step is a whole number, 0 or more (RUN@STEP).")
    run, step = Path(match["run"]), int(match["step"])
    run = run / "run" if (run / "run" / "checkpoints").is_dir() else run
    saved = dict(saved_checkpoints(run))
    if step not in saved:
        steps = ", ".join(str(s) for s in saved) or "none"
        raise BadInputError(f"{run} has no checkpoint at step {step}; it has steps {steps}.")
    return saved[step]


def entry_for(spec: str, registry: Registry, ema: bool = True, mnist: bool = False) -> ModelEntry:
    """The zoo entry a command-line name stands for (see the module docstring for the order of trying); only
    models that sample images (pixel diffusion) are compared."""
    if spec in registry.models:
        entry = registry.model(spec)
        if entry.family != "pixel":
            pixel = [n for n, m in registry.models.items() if m.family == "pixel"][:4]
            raise BadInputError(
                f"{spec} is a {entry.family} model, not a diffusion model that samples images; compare takes "
                f"those, e.g. {', '.join(pixel)}."
            )
        return entry
    folder = run_checkpoint(spec)
    if folder is not None:
        return local_entry(str(folder), ema=ema, trusted=True, mnist=mnist)
    if Path(spec).expanduser().exists():
        return local_entry(spec, ema=ema, trusted=True, mnist=mnist)
    if "/" in spec and not spec.startswith((".", "/", "~")):
        return hub_unet_entry(spec)
    raise BadInputError(f"{spec!r} is not a zoo model, a run checkpoint (RUN@STEP), an existing path or a Hub repo id.")


def compare(
    specs: list[str],
    registry: Registry,
    out: Path,
    *,
    sampler: str | None = None,
    steps: int = 20,
    seed: int = 0,
    images: int = 16,
    device: str = "cpu",
    label: int | None = None,
    metrics: bool = False,
    ema: bool = True,
    mnist: bool = False,
    log=print,
    settings: list[SamplerSettings] | None = None,
) -> list[dict[str, Any]]:
    """Sample every checkpoint from the same noise, write the grid and the tables into `out`; returns the rows.
    Without `sampler`, a folder with its own scheduler config is sampled as that config says
    (core/labs/compare.settings_for), the others with DPM-Solver++(2M) on trailing timesteps. `settings` (one per
    checkpoint, read from a file's records by `--from`) replace all that: each checkpoint is sampled as they say.
    Every file written carries each checkpoint's record (core/labs/provenance.py)."""
    if not 1 <= len(specs) <= 4:
        raise BadInputError("Name one to four checkpoints.")
    if sampler is not None and sampler not in SAMPLERS:
        raise BadInputError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    if not 1 <= images <= MAX_IMAGES or steps < 1:
        raise BadInputError(f"--images must be 1-{MAX_IMAGES:,} and --steps at least 1.")
    if settings is not None and len(settings) != len(specs):
        raise BadInputError("Give one set of settings per checkpoint.")
    if settings is not None and any(s.batch > MAX_IMAGES for s in settings):
        raise BadInputError(f"The file asks for more than {MAX_IMAGES:,} images per checkpoint.")
    check_device(device)
    # configs only, no weights; one row per name given, the same folder twice too (each named by its place)
    names = [
        spec if specs.count(spec) == 1 else f"{spec} (#{specs[: k + 1].count(spec)})" for k, spec in enumerate(specs)
    ]
    entries = {name: entry_for(spec, registry, ema, mnist) for name, spec in zip(names, specs, strict=True)}
    check_same_shape({name: e.sample_shape for name, e in entries.items()})
    _check_out(out)
    ctx, here = distributed.setup(device)  # under torchrun: join the ranks (this rank's device); else as given
    try:
        log = log if ctx.is_main else _quiet
        counts = [steps] * len(specs) if settings is None else [s.steps for s in settings]
        models, scorer = _prepare(entries, counts, registry, out, ctx, here, metrics, log)
        rows, panels, records = [], [], []
        for k, (name, model) in enumerate(models.items()):
            chosen = settings_for(model, sampler, steps, seed, images, label) if settings is None else settings[k]
            images = chosen.batch
            sampled, seconds = sample_sharded(model, chosen, images, ctx)  # sample_many's for one process
            if sampled is None:  # a rank other than 0: rank 0 holds the images
                continue
            records.append(provenance.record(model, chosen, spec=specs[k]))
            row = {
                "checkpoint": name,
                "title": model.title,
                "source": model.entry.source,
                "scheduler_config": "" if model.scheduler is None else model.scheduler.caption(),
                "not_followed": "; ".join(model.scheduler.unfollowed) if model.scheduler is not None else "",
                "parameters": model.param_count,
                "file_mb": round(model.file_bytes / 1e6, 3),
                "load_seconds": round(model.load_seconds, 3),
                "sample_seconds": round(seconds, 3),
                "images_per_second": round(images / seconds, 3),
                "sampler": chosen.sampler,
                "spacing": chosen.spacing,
                "steps": chosen.steps,
                "nfe": chosen.nfe,
                "seed": chosen.seed,
                "images": images,
                "class": "" if chosen.label is None else chosen.label,
                "device": device,
                "ranks": ctx.world_size,
            }
            if scorer is not None and is_mnist(model):
                classifier, reference = scorer
                quality = score(sampled, chosen.label, classifier, reference)
                row |= {k: (round(v, 4) if isinstance(v, float) else v) for k, v in quality.fields().items()}
            rows.append(row)
            panels.append((model.title, enlarge(tile(to_uint8(sampled[:GRID_IMAGES].float().cpu())), 360)))
            log(f"sampled {name}: {images} images in {seconds:.2f} s")
        if ctx.is_main:
            _write(out, rows, panels, {"hardware": hardware(device), "specs": specs}, records)
        distributed.wait_for_all(ctx)  # the other ranks stay until rank 0 has written
        return rows
    finally:
        distributed.teardown(ctx)


def _prepare(
    entries: dict[str, ModelEntry],
    steps: list[int],
    registry: Registry,
    out: Path,
    ctx: distributed.DistContext,
    device: str,
    metrics: bool,
    log,
) -> tuple[dict[str, LoadedModel], tuple[Any, np.ndarray] | None]:
    """Every checkpoint loaded on `device` and checked (`steps`: each one's step count) before any sampling, on
    every rank; rank 0 alone makes --out first, and last loads the scorer (with --metrics, for MNIST models). A
    rank that fails stops every rank with its sentence (`first_error`), leaving nothing behind."""
    models: dict[str, LoadedModel] = {}
    scorer, created, failure = None, False, None
    try:
        created = _make_folder(out) if ctx.is_main else False  # before any model is loaded
        for spec, entry in entries.items():
            models[spec] = load_model(entry, device)
            log(f"loaded {spec}: {models[spec].param_count / 1e6:.2f}M parameters in {models[spec].load_seconds:.2f} s")
            folder = models[spec].scheduler
            if folder is not None:  # what its own scheduler config asks for, and what of it is not followed
                log(f"  {folder.caption()}")
                for note in folder.unfollowed:
                    log(f"  not followed: {note}")
        for (spec, model), n in zip(models.items(), steps, strict=True):
            check_steps({spec: model}, n)
        if ctx.is_main and metrics and any(is_mnist(m) for m in models.values()):
            scorer = _scorer(registry, device)
    except AtlasError as e:
        failure = e
    except BaseException:
        _remove_if_made(out, created)
        raise
    failure = distributed.first_error(failure, ctx)  # every rank stops if one did, with the same sentence
    if failure is not None:
        _remove_if_made(out, created)
        raise failure
    return models, scorer


def from_file(path: Path) -> tuple[list[str], list[SamplerSettings]]:
    """`--from FILE`: the checkpoints (as they were named) and each one's settings, from the records a PNG or JSON
    the Atlas wrote carries (core/labs/provenance.read); a sentence for anything else."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FROM_BYTES + 1)
    except OSError as e:
        raise BadInputError(f"--from {plain_label(str(path), 80)} cannot be read ({e.strerror or e}).") from None
    if len(data) > MAX_FROM_BYTES:
        raise BadInputError(f"--from {plain_label(str(path), 80)} is larger than {MAX_FROM_BYTES // 2**20} MB.")
    records = provenance.read(data, f"--from {plain_label(path.name, 60)}")
    specs = []
    for rec in records:
        model = rec.get("model") if isinstance(rec.get("model"), dict) else {}
        spec = model.get("spec") or model.get("name")
        if not isinstance(spec, str) or not spec:
            raise BadInputError(f"--from {plain_label(path.name, 60)} names no model to sample.")
        specs.append(spec)
    return specs, [provenance.settings_from(rec) for rec in records]


def _scorer(registry: Registry, device: str) -> tuple[Any, np.ndarray]:
    """The bundled classifier and its features of the held-out digits (FD-LeNet's reference)."""
    classifier = load_model(registry.model("mnist-lenet"), "cpu").module
    held_out = load_image_set(registry.dataset("mnist"), "test")
    return classifier, held_out_features(classifier, held_out.images)


def _quiet(*_: object) -> None:
    """The log of a rank other than 0: it prints nothing."""


def _remove_if_made(out: Path, created: bool) -> None:
    """The folder this command made, still empty: nothing is left of a refused command."""
    if created:
        with suppress(OSError):
            out.rmdir()


def _check_out(out: Path) -> None:
    """A sentence if --out is a file."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file; name a folder (it is created if missing).")


def _make_folder(out: Path) -> bool:
    """--out made (with its parents) if missing, before the work; whether it was made. A sentence if it is a
    file or cannot be made."""
    _check_out(out)
    try:
        out.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as e:
        raise BadInputError(f"--out {out} cannot be created ({e.strerror or e.__class__.__name__}).") from None
    return True


def _write(
    out: Path, rows: list[dict[str, Any]], panels: list[tuple[str, np.ndarray]], meta: dict, records: list[dict]
) -> None:
    """grid.png (the records in its "atlas" text chunk), results.csv (a first comment line holding them) and
    results.json (an "atlas" field): each reruns with `python -m zoo compare --from FILE`."""
    (out / "grid.png").write_bytes(provenance.png(captioned(panels), records))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        f.write(provenance.csv("", records))
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    meta = {**meta, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": rows, provenance.KEY: records}
    (out / "results.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
