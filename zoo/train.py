"""Reproduce a bundled model from its recipe (zoo/recipes/NAME.toml): `python -m zoo train RECIPE`.

Writes OUT/ in Hugging Face layout (config.json + fp16 safetensors, as the manifest's formats expect) and
OUT/run/ in the run-log format (config.json with every setting, data, seed, hardware, code version and
wall time; metrics.jsonl; samples/step_XXXXXXX.png; for pixel and latent models checkpoints/step_XXXXXXX/
every `checkpoint_every` steps (default: `sample_every`), each a folder that loads on its own, with the EMA
weights and post-hoc EMA's two snapshots (sigma_rel 0.05 and 0.10; a recipe's train.posthoc_ema names other
lengths, or [] for none: core/training/posthoc_ema.py), from which `python -m zoo posthoc-ema` rebuilds any EMA
length. Pixel and latent models train with core.training.DiffusionTrainer; the VAE and the classifier with their
own loops.

Distill recipes (kind "distill") make a few-step student of a bundled flow model (`teacher`, a zoo name) with a
method of core/training/few_step/ that needs only (x, t), so a UNet runs it unchanged: "progressive" (options
teacher_steps), "consistency_distillation" (intervals, solver) or "reflow" (pairs, solver, solver_steps: the
teacher's samples of seeded noise, which the student is flow-matched on; grid_nfe, grid_share). The student starts
from the teacher's weights, or from another bundled flow UNet of the same shape (`start`, e.g. a distilled one).
OUT/ holds it as a diffusers UNet folder like the teacher's, with the flow path's scheduler_config.json; OUT/run/
logs it, with sample grids drawn by the student's own sampler (no checkpoint folders: the student is the one
folder that ships).

Pixel and latent recipes also train data-parallel: `torchrun --nproc_per_node N -m zoo train RECIPE` (gloo on
the CPU, nccl with --device cuda, one GPU per process). Each process draws its own batches, so the global
batch is N times the recipe's; only rank 0 samples, logs and writes OUT/, and at the end the ranks check that
their weights are bit-identical (run/config.json: hardware.world_size, distributed, replicas_identical).

Threads: `python -m zoo` trains on all cores, each torchrun process on its share of them, or ATLAS_THREADS
(core/device.threads_for); run/config.json records the count (hardware.threads) and the model card shows it.
"""

from __future__ import annotations

import copy
import json
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from core.data.images import tile, to_uint8
from core.device import check_device
from core.diffusion.denoisers import clip_denoised, model_denoiser, with_labels
from core.diffusion.samplers import sample
from core.diffusion.schedules import make_schedule
from core.models.classifier import LeNet
from core.models.mlp import MLPConfig, build_mlp
from core.models.unet import SampleOnly, build_unet, unet_config
from core.models.vae import ConvVAE
from core.runs.checkpoints import as_json, save_checkpoint, save_weights, scheduler_config
from core.runs.writer import RunWriter
from core.training.classifier import ClassifierTrainConfig, accuracy, train_classifier
from core.training.diffusion import DiffusionTrainer, TrainConfig, distributed, labelled_batches
from core.training.posthoc_ema import STREAMS
from core.training.vae import VAETrainConfig, train_vae
from zoo.datasets import load_image_set
from zoo.errors import BadInputError, ZooError
from zoo.registry import load_registry

RECIPES = Path(__file__).with_name("recipes")
KINDS = ("pixel", "vae", "latent", "classifier", "distill")
DISTILL_METHODS = ("progressive", "consistency_distillation", "reflow")
PAIR_SEED = 100_000  # reflow's pairs: noise from seeds PAIR_SEED + i, apart from the cards' seed-0 noise


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str
    title: str
    description: str
    data: str
    train: dict[str, Any]
    schedule: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 0
    cond_dropout: float = 0.0
    vae: str | None = None
    teacher: str | None = None  # distill: the zoo model distilled
    distill: dict[str, Any] = field(default_factory=dict)  # distill: method and its options
    path: Path | None = None


def load_recipe(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if not path.is_file():
        path = RECIPES / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(RECIPES.glob("*.toml")))
        raise ZooError(f"No recipe {name_or_path!r}; known recipes: {known}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ZooError(f"{path} is not a recipe (a TOML file): {e.__class__.__name__}.") from None
    try:
        recipe = Recipe(**data, path=path)
    except TypeError as e:
        raise ZooError(f"Recipe {path.name} has an unknown or missing field ({e}).") from e
    if recipe.kind not in KINDS:
        raise ZooError(f"Recipe {path.name}: kind must be one of {', '.join(KINDS)}.")
    if recipe.kind == "distill" and (not recipe.teacher or recipe.distill.get("method") not in DISTILL_METHODS):
        raise ZooError(
            f"Recipe {path.name}: a distill recipe names its teacher and a method ({', '.join(DISTILL_METHODS)})."
        )
    return recipe


def mnist_tensors(split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Digits as floats in [-1, 1] [N, 1, 28, 28], labels, and where they came from."""
    ds = load_image_set(load_registry().dataset("mnist"), split, limit)
    x = torch.from_numpy(ds.images.copy()).float() / 127.5 - 1
    return x, torch.from_numpy(ds.labels.copy()), ds.source


def _sample_grid(model, schedule, recipe: Recipe, shape: tuple[int, ...], n: int = 36) -> torch.Tensor:
    """A fixed-seed grid (dpmpp_2m, 20 steps; classes 0, 1, ... at guidance 3) to watch training progress."""
    denoiser = model_denoiser(model, schedule, recipe.train["prediction_type"], recipe.num_classes or None)
    if recipe.num_classes:
        denoiser = with_labels(denoiser, torch.arange(n) % recipe.num_classes, 3.0, null_label=recipe.num_classes)
    if recipe.kind == "pixel":  # clamp x_0 estimates to the data range, as DDPM's reference sampler does
        denoiser = clip_denoised(denoiser)
    g = torch.Generator().manual_seed(1234)
    sigmas = schedule.sampling_sigmas(20, "trailing", max_sigma=schedule.sampling_cap)
    return sample("dpmpp_2m", denoiser, torch.randn((n, *shape), generator=g) * float(sigmas[0]), sigmas)


def _train_diffusion(
    recipe: Recipe,
    out: Path,
    steps: int,
    device: str,
    model: torch.nn.Module,
    data: tuple[torch.Tensor, torch.Tensor | None],
    shape: tuple[int, ...],
    model_config: dict[str, Any],
    source: str,
    export: Callable[[DiffusionTrainer], tuple[nn.Module, str, dict[str, Any]]],
    decode=None,
    **extra: Any,
) -> DiffusionTrainer:
    """DDPM training of `model` on `data` (x, labels or None), logging to OUT/run as it goes. `export` names
    what a checkpoint holds: (module to save, weights file name, its config.json)."""
    x, y = data
    schedule = make_schedule(recipe.schedule.get("kind", "linear"), **_schedule_args(recipe.schedule))
    train = {"posthoc_ema": STREAMS, **recipe.train}  # post-hoc EMA's two streams unless a recipe says otherwise
    cfg = TrainConfig(**{k: v for k, v in train.items() if k not in ("steps", "sample_every", "checkpoint_every")})
    batches = labelled_batches(x.to(device), y, recipe.num_classes, recipe.cond_dropout)
    ctx = distributed.context()
    trainer = DiffusionTrainer(model.to(device), schedule, cfg, batches)
    extra |= {"steps": steps, "schedule": recipe.schedule, "num_classes": recipe.num_classes}
    extra["cond_dropout"] = recipe.cond_dropout
    if ctx.world_size > 1:
        extra["distributed"] = {
            "world_size": ctx.world_size,
            "backend": ctx.backend,
            "global_batch_size": cfg.batch_size * ctx.world_size,
            "data_seed": "train.seed + rank",
        }
    # Only rank 0 writes the run folder (and keeps the EMA copy that it samples from).
    writer = None
    if ctx.is_main:
        writer = _run_writer(recipe, out, device, cfg.to_dict(), model_config, source, len(x), **extra)
    sample_every = int(recipe.train.get("sample_every", 500))
    checkpoint_every = int(recipe.train.get("checkpoint_every", sample_every))
    logged = 0

    def callback(tr: DiffusionTrainer) -> None:
        nonlocal logged
        if writer is None:
            return
        for record in tr.metrics[logged:]:
            writer.log(record)
        logged = len(tr.metrics)
        if tr.step % sample_every == 0 or tr.step == steps:
            grid = _sample_grid(tr.sampling_model, schedule, recipe, shape)
            writer.save_samples(tr.step, tile(to_uint8(grid if decode is None else decode(grid))))
            print(
                f"{recipe.name}: step {tr.step}/{steps}, loss {tr.metrics[-1]['loss']:.4f}, {tr.seconds:.0f} s",
                flush=True,
            )
        if tr.step % checkpoint_every == 0 or tr.step == steps:
            module, weights_name, config = export(tr)
            save_checkpoint(
                writer.checkpoint_folder(tr.step),
                module,
                weights_name,
                config,
                schedule,
                cfg.prediction_type,
                extra_files=None if tr.posthoc is None else tr.posthoc.files(tr.step, tr.sampling_model, module),
                step=tr.step,
                recipe=recipe.name,
                data=recipe.data,
                weights="ema" if cfg.ema_decay else "raw",
                posthoc_ema=list(cfg.posthoc_ema),
                num_classes=recipe.num_classes,
                null_label=recipe.num_classes if recipe.num_classes else None,
            )

    trainer.train(steps, callback, every=math.gcd(sample_every, checkpoint_every, cfg.log_every))
    summary: dict[str, Any] = {"final_loss": trainer.metrics[-1]["loss"]}
    if ctx.world_size > 1:  # every rank takes part in the check
        summary["replicas_identical"] = distributed.replicas_identical(trainer.model, ctx)
    if writer is not None:
        writer.finish(trainer.seconds, **summary)
    return trainer


def _schedule_args(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "num_steps": spec.get("steps", 1000),
        "beta_start": spec.get("beta_start"),
        "beta_end": spec.get("beta_end"),
        "shift": spec.get("shift", 1.0),
    }


def train_pixel(recipe: Recipe, out: Path, steps: int, device: str) -> None:
    x, y, source = mnist_tensors("train")
    config = unet_config(recipe.num_classes or None, **recipe.model)
    model = SampleOnly(build_unet(config))
    labels = y if recipe.num_classes else None

    def export(tr: DiffusionTrainer) -> tuple[nn.Module, str, dict[str, Any]]:
        return tr.sampling_model.unet, "diffusion_pytorch_model.safetensors", {"_class_name": "UNet2DModel", **config}

    trainer = _train_diffusion(recipe, out, steps, device, model, (x, labels), (1, 28, 28), config, source, export)
    if distributed.context().is_main:
        module, weights_name, weights_config = export(trainer)
        save_weights(module, out, weights_name, weights_config)


def train_latent(recipe: Recipe, out: Path, steps: int, device: str) -> None:
    from zoo.loaders import load_model

    vae = load_model(load_registry().model(str(recipe.vae))).module
    x, y, source = mnist_tensors("train")
    with torch.no_grad():
        z = vae.encode((x + 1) / 2)[0]
    mean, std = z.mean(0), z.std(0)
    stats = {"mean": mean.tolist(), "std": std.tolist(), "vae": recipe.vae}
    config = MLPConfig(
        dim=2, num_classes=recipe.num_classes or None, num_steps=recipe.schedule.get("steps", 1000), **recipe.model
    )
    model = build_mlp(config, seed=recipe.train.get("seed", 0))

    def decode(z_std: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return vae.decode(z_std * std + mean) * 2 - 1

    data = ((z - mean) / std, y)

    def export(tr: DiffusionTrainer) -> tuple[nn.Module, str, dict[str, Any]]:
        return tr.sampling_model, "model.safetensors", config.to_saved()

    trainer = _train_diffusion(
        recipe, out, steps, device, model, data, (2,), config.to_dict(), source, export, decode, latent_stats=stats
    )
    if not distributed.context().is_main:
        return
    save_weights(trainer.sampling_model, out, "model.safetensors", config.to_dict())
    (out / "latent_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")


def few_step_sampler(recipe: Recipe) -> dict[str, Any]:
    """How a distilled student samples (the manifest's `sampler` of its entry), at one step: a progressive
    student with Euler, the rule it was distilled for; a consistency model with the multistep consistency sampler
    (core/diffusion/samplers.consistency), whose one step is the same Euler step (f(x, 1) = x - F(x, 1) is the
    flow adapter's x_0 estimate) and whose further steps re-noise instead of integrating."""
    return {"name": "consistency" if recipe.distill["method"] == "consistency_distillation" else "euler", "steps": 1}


def flow_unet(name: str, device: str, role: str):
    """A bundled flow-matching UNet of the zoo, loaded, with its config (as diffusers saved it)."""
    from zoo.loaders import load_model, read_json

    entry = load_registry().model(name)
    if entry.prediction_type != "flow_prediction" or entry.format != "diffusers-unet":
        raise ZooError(f"The {role} {entry.name} is not a flow-matching UNet of the zoo.")
    loaded = load_model(entry, device)
    config = read_json(loaded.files["config.json"], entry.name, entry.roots)
    return loaded, {k: v for k, v in config.items() if k != "_class_name"}


def teacher_pairs(
    loaded, pairs: int = 4096, solver: str = "dpmpp_2m", solver_steps: int = 20, seed: int = PAIR_SEED, chunk: int = 250
) -> tuple[torch.Tensor, torch.Tensor]:
    """`pairs` (noise, sample) pairs of a zoo model: noise of seed `seed + start` per chunk, sampled with `solver`
    in `solver_steps` steps on the trailing grid, x_0 clipped to [-1, 1] as the cards sample."""
    if not 1 <= pairs <= 100_000:
        raise BadInputError("Reflow takes 1 to 100,000 pairs.")
    sigmas = loaded.schedule.capped_sigmas(solver_steps, "trailing")
    noise, samples = [], []
    for start in range(0, pairs, chunk):
        g = torch.Generator().manual_seed(seed + start)
        eps = torch.randn((min(chunk, pairs - start), *loaded.sample_shape), generator=g)
        x = eps.to(loaded.device) * float(sigmas[0])
        samples.append(sample(solver, clip_denoised(loaded.denoiser), x, sigmas, generator=g).cpu())
        noise.append(eps)
    return torch.cat(noise), torch.cat(samples)


def train_distill(recipe: Recipe, out: Path, steps: int, device: str) -> None:
    """A few-step student of `recipe.teacher` (a flow-matching UNet of the zoo) by `recipe.distill`'s method."""
    from core.training.diffusion import paired_batches
    from core.training.few_step.methods import METHODS
    from core.training.few_step.reflow import Reflow

    loaded, config = flow_unet(str(recipe.teacher), device, "teacher")
    options = {k: v for k, v in recipe.distill.items() if k != "method"}
    start = options.pop("start", None)
    first, first_config = (loaded, config) if start is None else flow_unet(str(start), device, "starting model")
    if first_config != config:
        raise ZooError(f"{recipe.name}: the starting model {start} is not shaped like the teacher {recipe.teacher}.")
    student = SampleOnly(copy.deepcopy(first.module)).train().requires_grad_(True)  # starts as that model
    train = {k: v for k, v in recipe.train.items() if k not in ("steps", "sample_every", "checkpoint_every")}
    cfg = TrainConfig(**{"posthoc_ema": (), **train, "prediction_type": "flow_prediction"})  # the flow path's methods
    method = recipe.distill["method"]
    if method == "reflow":
        made = {k: options.pop(k) for k in ("pairs", "solver", "solver_steps") if k in options}
        tic = time.perf_counter()
        eps, x0 = teacher_pairs(loaded, **made)
        print(f"{recipe.name}: {len(x0):,} pairs of {loaded.name} in {time.perf_counter() - tic:.0f} s", flush=True)
        trainer = Reflow(student, cfg, paired_batches(x0.to(device), eps.to(device)), **options)
        source, images = f"{len(x0):,} (noise, sample) pairs of {loaded.name}", len(x0)
    else:
        x, _, source = mnist_tensors("train")
        images = len(x)
        if method == "progressive":
            options["total_steps"] = steps
        batches = labelled_batches(x.to(device), None, 0, 0.0)
        trainer = METHODS[method](student, cfg, batches, teacher=SampleOnly(loaded.module), **options)
    sampler = few_step_sampler(recipe)
    extra = {"steps": steps, "teacher": loaded.name, "distill": recipe.distill, "sampler": sampler}
    writer = _run_writer(recipe, out, device, cfg.to_dict(), config, source, images, **extra)
    sample_every = int(recipe.train.get("sample_every", 500))
    noise = torch.randn((36, 1, 28, 28), generator=torch.Generator().manual_seed(1234))
    logged = 0

    def callback(tr) -> None:
        nonlocal logged
        for record in tr.metrics[logged:]:
            writer.log(record)
        logged = len(tr.metrics)
        if tr.step % sample_every == 0 or tr.step == steps:
            nfe = getattr(tr, "student_steps", sampler["steps"])  # progressive: the current round's step count
            grid = tr.sample(noise.to(device), nfe, torch.Generator().manual_seed(0)).clamp(-1, 1)
            writer.save_samples(tr.step, tile(to_uint8(grid.cpu())))
            print(f"{recipe.name}: step {tr.step}/{steps} (NFE {nfe}), loss {tr.metrics[-1]['loss']:.5f}", flush=True)

    trainer.train(steps, callback, every=math.gcd(sample_every, cfg.log_every))
    writer.finish(trainer.seconds, final_loss=trainer.metrics[-1]["loss"])
    module = trainer.sampling_model.unet
    save_weights(module, out, "diffusion_pytorch_model.safetensors", {"_class_name": "UNet2DModel", **config})
    # the teacher's flow path as diffusers reads it (FlowMatchEulerDiscreteScheduler): the folder samples there too
    (out / "scheduler_config.json").write_bytes(as_json(scheduler_config(loaded.schedule, "flow_prediction")))


def _run_writer(
    recipe: Recipe, out: Path, device: str, train: dict, model: dict, source: str, images: int, **extra: Any
) -> RunWriter:
    """OUT/run with the settings every run records: recipe, kind, title, training settings, model, data."""
    info = {"recipe": recipe.name, "kind": recipe.kind, "title": recipe.title, "train": train, "model": model}
    return RunWriter(out / "run", info | {"data": source, "train_images": images} | extra, device)


def train_vae_recipe(recipe: Recipe, out: Path, device: str) -> None:
    x, y, source = mnist_tensors("train")
    x01 = (x + 1) / 2
    cfg = VAETrainConfig(**{k: v for k, v in recipe.train.items() if k != "snapshot_digits"})
    n_snap = int(recipe.train.get("snapshot_digits", 1000))
    torch.manual_seed(cfg.seed)
    vae = ConvVAE(**recipe.model)
    writer = _run_writer(
        recipe, out, device, cfg.to_dict(), {"latent_dim": vae.latent_dim, **recipe.model}, source, len(x)
    )
    records, snaps = train_vae(vae, x01, cfg, x01[:n_snap], y[:n_snap], lambda rec, _: writer.log(rec))
    with torch.no_grad():
        grid = vae.decode(torch.randn(36, vae.latent_dim, generator=torch.Generator().manual_seed(0))) * 2 - 1
    writer.save_samples(records[-1]["step"], tile(to_uint8(grid)))
    writer.finish(records[-1]["seconds"], final_loss=records[-1]["loss"])
    save_weights(vae, out, "model.safetensors", {"latent_dim": vae.latent_dim, **recipe.model})
    save_file({k: v.contiguous() for k, v in snaps.as_tensors().items()}, str(out / "latent_snapshots.safetensors"))


def train_classifier_recipe(recipe: Recipe, out: Path, device: str) -> None:
    x, y, source = mnist_tensors("train")
    x_test, y_test, _ = mnist_tensors("test")
    cfg = ClassifierTrainConfig(**recipe.train)
    torch.manual_seed(cfg.seed)
    model = LeNet(**recipe.model)
    writer = _run_writer(recipe, out, device, cfg.to_dict(), recipe.model, source, len(x))
    records = train_classifier(model, x, y, cfg, writer.log)
    held_out = accuracy(model, x_test, y_test)
    writer.log({"step": records[-1]["step"], "held_out_accuracy": held_out})
    writer.finish(records[-1]["seconds"], held_out_accuracy=held_out, held_out_images=len(x_test))
    save_weights(model, out, "model.safetensors", {"num_classes": 10, **recipe.model})
    print(f"{recipe.name}: held-out accuracy {held_out:.4f} on {len(x_test)} digits", flush=True)


def train(
    name_or_path: str,
    out: Path | None = None,
    steps: int | None = None,
    device: str = "cpu",
    checkpoint_every: int | None = None,
) -> Path:
    """Train a recipe into OUT (returned); under torchrun, data-parallel (see the module docstring). Everything
    given is checked before any work: the recipe, steps (or epochs) >= 1, checkpoint_every >= 1, the device, an
    output folder that can be made."""
    recipe = load_recipe(name_or_path)
    if steps is not None and steps < 1:
        raise BadInputError(f"--steps must be at least 1 (got {steps}); leave it out for the recipe's own.")
    if checkpoint_every is not None:
        if checkpoint_every < 1:
            raise BadInputError(f"--checkpoint-every must be at least 1 (got {checkpoint_every}).")
        recipe = Recipe(**{**recipe.__dict__, "train": {**recipe.train, "checkpoint_every": checkpoint_every}})
    check_device(device)
    if out is not None:
        _make_folder(out)
    if recipe.kind not in ("pixel", "latent") and (distributed.launched_by_torchrun() or distributed.active()):
        raise ZooError(f"{recipe.name} is a {recipe.kind} recipe; only pixel and latent recipes train under torchrun.")
    ctx, device = distributed.setup(device)
    try:
        default = Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = Path(distributed.broadcast_object(str(out or default), ctx))  # rank 0's clock names the folder
        torch.manual_seed(int(recipe.train.get("seed", 0)))
        if recipe.kind in ("pixel", "latent", "distill"):
            n = int(recipe.train["steps"] if steps is None else steps)
            {"pixel": train_pixel, "latent": train_latent, "distill": train_distill}[recipe.kind](
                recipe, out, n, device
            )
        elif recipe.kind == "vae":
            train_vae_recipe(_with_epochs(recipe, steps), out, device)
        else:
            train_classifier_recipe(_with_epochs(recipe, steps), out, device)
    finally:
        distributed.teardown(ctx)
    return out


def _make_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file; name a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"--out {out} cannot be created ({e.strerror or e.__class__.__name__}).") from None


def _with_epochs(recipe: Recipe, epochs: int | None) -> Recipe:
    """For epoch-based recipes, --steps N means N epochs (handy for quick checks)."""
    if epochs is None:
        return recipe
    return Recipe(**{**recipe.__dict__, "train": {**recipe.train, "epochs": epochs}})
