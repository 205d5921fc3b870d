"""Checkpoints on this machine's disk, as zoo entries: a folder or file a person names, or a run's checkpoint.

Layouts read (those diffusers and its training scripts write):
- a UNet folder: config.json (a UNet2DModel's) + diffusion_pytorch_model.safetensors (or .bin); the schedule
  from a scheduler_config.json beside it or in ../scheduler/ (a run's checkpoints/step_N/ is one of these);
- a pipeline folder: model_index.json, unet/, scheduler/ (what `pipeline.save_pretrained` writes);
- checkpoint-N/ as diffusers' training examples save it through accelerate: unet/ and unet_ema/ (the EMA
  weights are taken where they exist), the schedule from the training's output folder (../scheduler/) once
  the pipeline has been saved there;
- a .safetensors file with its config.json (and optionally scheduler_config.json) beside it.
Everything else in such folders (optimizer.bin, random_states_*.pkl, ...) is never opened.

In the app a typed path is accepted only under the allowed roots (core/paths.py), and so is every file it
leads to: a symlink inside an allowed folder that points out of it is refused, and every file is read through
`open_inside` (checked as it is opened, here and again at load), so a link swapped in later is never followed.
On the command line (`python -m zoo compare`) the person at the shell names their own files, so any readable
path is taken. Weights are read without unpickling (zoo/weights.py); .bin files only through
torch.load(weights_only=True), and a loose pickle file (.pkl, .ckpt, .pt) is refused. A network is sized from
its config before it is built (zoo/architectures.py), and no weights file over the download limit is read.
Messages show paths relative to their root (core/paths.shown), never the server's absolute paths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.paths import allowed_roots, inside_roots, relative, resolve_allowed
from core.runs.checkpoints import ATLAS_FILE
from core.runs.record import checkpoint_step, run_name
from core.text import plain_label
from zoo.architectures import unet_outline
from zoo.errors import BadInputError, CheckpointError
from zoo.loaders import read_json, schedule_from_scheduler_config
from zoo.registry import ModelEntry, ScheduleSpec
from zoo.weights import open_weights

WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
DDPM_DEFAULT = ScheduleSpec("linear", 1000, 1e-4, 0.02)  # diffusers' DDPMScheduler defaults


def _label(path: Path, roots: Sequence[Path] | None) -> str:
    """A short name for a folder: a run's checkpoint as 'RUN @ step N', anything else by its last two parts
    (relative to its root, or '/etc' for a folder at the top of the disk)."""
    step = checkpoint_step(path)
    if step is not None:
        return plain_label(f"{run_name(path.parent.parent)} @ step {step:,}", 60)
    parts = relative(path, roots).parts
    return plain_label(Path(*parts[-2:]).as_posix() if parts else "?", 60)


def _unet_folder(path: Path, ema: bool, roots: Sequence[Path] | None) -> tuple[Path, str, str]:
    """The folder holding the UNet's config and weights, which weights those are ("", "EMA" or "raw": a
    training checkpoint has both), and a note on the choice."""
    if (path / "model_index.json").is_file():
        if not (path / "unet").is_dir():
            raise CheckpointError(f"{_label(path, roots)} is a pipeline folder without a unet/ folder.")
        return path / "unet", "", ""
    if (path / "unet").is_dir() or (path / "unet_ema").is_dir():  # accelerate's checkpoint-N
        if ema and (path / "unet_ema").is_dir():
            return path / "unet_ema", "EMA", "EMA weights (unet_ema/)"
        if (path / "unet").is_dir():
            return path / "unet", "raw", "raw weights (unet/)" + ("; there is no unet_ema/" if ema else "")
        return path / "unet_ema", "EMA", "EMA weights (unet_ema/; there is no unet/)"
    if (path / "config.json").is_file():
        return path, "", ""
    raise CheckpointError(
        f"{_label(path, roots)} holds no diffusers model: expected config.json with "
        "diffusion_pytorch_model.safetensors, a pipeline (model_index.json, unet/, scheduler/), or a training "
        "checkpoint (unet/, unet_ema/)."
    )


def _weights_of(path: Path, ema: bool, roots: Sequence[Path] | None) -> tuple[Path, Path, str, str]:
    """(folder of config.json, weights file, variant, note) for a named folder or .safetensors file; only
    whether files exist is looked at here, nothing is read."""
    if path.is_file():
        if path.suffix.lower() in PICKLES:
            raise CheckpointError(
                f"{path.name} is a pickle-based file; only .safetensors files are read from a path (a pickle can "
                "run code when loaded). Convert it with safetensors, or name its diffusers folder."
            )
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path.name} is not a .safetensors file or a model folder.")
        if not (path.parent / "config.json").is_file():
            raise CheckpointError(f"{path.name} has no config.json beside it, so its network cannot be rebuilt.")
        return path.parent, path, "", ""
    unet_dir, variant, note = _unet_folder(path, ema, roots)
    weights = next((unet_dir / w for w in WEIGHTS if (unet_dir / w).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{_label(unet_dir, roots)} has no diffusion_pytorch_model.safetensors (or .bin).")
    if not (unet_dir / "config.json").is_file():
        raise CheckpointError(f"{_label(unet_dir, roots)} has no config.json, so its network cannot be rebuilt.")
    return unet_dir, weights, variant, note


def _scheduler_config(unet_dir: Path, top: Path, roots: Sequence[Path] | None) -> Path | None:
    """scheduler_config.json beside the UNet, in a pipeline's scheduler/, or in the training output's; in the
    app only one inside the allowed roots (one outside is passed over unread, as if it were not there)."""
    for candidate in (
        unet_dir / "scheduler_config.json",
        top / "scheduler" / "scheduler_config.json",
        unet_dir.parent / "scheduler" / "scheduler_config.json",
        top.parent / "scheduler" / "scheduler_config.json",
    ):
        if (roots is None or inside_roots(candidate)) and candidate.is_file():
            return Path(os.path.normpath(candidate))  # not resolved again: it is checked when read
    return None


def local_entry(text: str, *, ema: bool = True, trusted: bool = False, mnist: bool = False) -> ModelEntry:
    """A zoo entry for a UNet on this machine's disk (see the module docstring for the layouts), checked
    before any weight is read: an allowed place (every file it leads to), a known layout, weights that are
    not a loose pickle and not over the size limit, a config with a shape, classes and numbers in range, a
    scheduler config with at most 100,000 steps. Raises a ZooError subclass with a sentence. Every file is
    read through `open_inside`, here and again at load, so a symlink put in a file's place is never followed.

    The data set a model learnt comes from atlas.json (our own runs write it); with `mnist`, a 1x28x28 model
    that does not say is taken for an MNIST one, so the bundled classifier scores it."""
    if not str(text).strip():
        raise BadInputError("Name a checkpoint folder or .safetensors file.")
    roots = None if trusted else tuple(allowed_roots())
    path = Path(str(text).strip()).expanduser().resolve() if trusted else resolve_allowed(text, "checkpoints")
    if not path.exists():
        raise BadInputError(f"There is nothing at {plain_label(text, 80)}.")
    unet_dir, weights, variant, note = _weights_of(path, ema, roots)
    atlas = unet_dir / ATLAS_FILE
    what = _label(unet_dir, roots)
    with open_weights(weights, roots):  # inside the roots and within the size limit; read at load
        pass
    shape, classes = unet_outline(read_json(unet_dir / "config.json", what, roots), what)
    extra = read_json(atlas, what, roots) if atlas.is_file() else {}
    scheduler = _scheduler_config(unet_dir, path, roots)
    notes = [note] if note else []
    prediction, schedule = "epsilon", DDPM_DEFAULT
    if scheduler is None:
        notes.append("no scheduler_config.json found: DDPM's defaults assumed (linear betas, T = 1000, epsilon)")
    else:
        where = _label(scheduler.parent, roots)
        _, prediction = schedule_from_scheduler_config(read_json(scheduler, where, roots), where)  # checked now
        schedule = ScheduleSpec()  # read again at load
    files = [unet_dir / "config.json", weights] + ([scheduler] if scheduler else [])
    base = Path(os.path.commonpath([str(f.parent) for f in files]))
    null_label = extra.get("null_label")
    null_ok = isinstance(null_label, int) and not isinstance(null_label, bool) and 0 <= null_label < classes
    return ModelEntry(
        name=f"local:{files[1]}",  # the weights file: one name per set of weights (EMA and raw differ)
        title=_label(path, roots) + (f" ({variant})" if variant else ""),
        description=f"A local model ({', '.join(notes) or 'diffusers layout'}).",
        family="pixel",
        format="diffusers-unet",
        files=tuple(f.relative_to(base).as_posix() for f in files),
        path=base,
        local=True,
        roots=roots,
        sample_shape=shape,
        prediction_type=prediction,
        schedule=schedule,
        # With a "no class" label for guidance (our runs say so in atlas.json) one embedding is not a class.
        num_classes=classes - 1 if null_ok and null_label == classes - 1 else classes,
        null_label=null_label if null_ok else None,
        data=_data(extra, shape, mnist),
    )


def _data(atlas: dict[str, Any], shape: tuple[int, int, int], mnist: bool) -> str | None:
    if isinstance(atlas.get("data"), str):
        return atlas["data"]
    return "mnist" if mnist and shape == (1, 28, 28) else None
