"""Real checkpoint files and data sets, written by tests and served by the local Hub (tests/hub_server.py)."""

from __future__ import annotations

import io
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from diffusers import DDPMScheduler
from PIL import Image

from tests.helpers import tiny_unet
from zoo.manifest import manifest_text
from zoo.registry import MANIFEST, ModelEntry, load_registry

TINY_COND_CONFIG = {
    "sample_size": 8,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 1,
    "block_out_channels": [16, 32],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "num_class_embeds": 11,
}


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, keyed by its POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pipeline_files(tmp: Path, seed: int = 0) -> tuple[dict[str, bytes], torch.nn.Module]:
    """A tiny unconditional UNet2DModel saved in diffusers' pipeline layout (unet/ + scheduler/)."""
    unet = tiny_unet(seed=seed, channels=3)
    unet.save_pretrained(tmp / "pipe" / "unet", safe_serialization=True)
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").save_config(tmp / "pipe" / "scheduler")
    return folder_files(tmp / "pipe"), unet


def flow_pipeline_files(tmp: Path, shift: float = 3.0, seed: int = 0) -> tuple[dict[str, bytes], torch.nn.Module]:
    """A tiny UNet2DModel with diffusers' flow-matching scheduler config (FlowMatchEulerDiscreteScheduler, a
    timestep shift), in the pipeline layout."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    unet = tiny_unet(seed=seed, channels=3)
    unet.save_pretrained(tmp / "flow" / "unet", safe_serialization=True)
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift).save_config(tmp / "flow" / "scheduler")
    return folder_files(tmp / "flow"), unet


def conditional_pth(seed: int = 1, extra: dict | None = None) -> tuple[bytes, torch.nn.Module]:
    """A tiny class-conditional UNet2DModel as a .pth file holding {"model": state_dict, "epoch": 3}."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(**TINY_COND_CONFIG).eval()
    buf = io.BytesIO()
    torch.save({"model": unet.state_dict(), "epoch": 3, **(extra or {})}, buf)
    return buf.getvalue(), unet


def pickled_module() -> bytes:
    """A pickle of a whole nn.Module: loading it needs Python classes, so it is not a plain state dict."""
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    return buf.getvalue()


def parquet_digits(
    n: int = 20, channels: int = 1, size: int = 28, image_column: str = "image"
) -> tuple[bytes, np.ndarray]:
    """A parquet table laid out like the Hub's image data sets: struct(bytes, path) images + int labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    cells = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if channels == 1 else img).save(buf, format="PNG")
        cells.append({"bytes": buf.getvalue(), "path": None})
    labels = np.arange(n) % 10
    table = pa.table({image_column: cells, "label": pa.array(labels, type=pa.int64())})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue(), images


def write_manifest(folder: Path, text: str) -> Path:
    path = folder / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def model_entry(folder: Path, entry: dict) -> ModelEntry:
    """`entry` (a dict of manifest fields) as the registry reads it from a manifest written in `folder`."""
    return load_registry(write_manifest(folder, manifest_text(models=[entry]))).model(entry["name"])


def cond_entry(name: str, repo: str, file: str = "ddpm-linear.pth", config: dict | None = None, **fields) -> dict:
    """A manifest entry (zoo.manifest.manifest_text) for `conditional_pth` served from `repo`; `fields` add to
    it or replace its values."""
    entry = {
        "name": name,
        "title": "Tiny conditional",
        "family": "pixel",
        "format": "state-dict",
        "repo": repo,
        "files": [file],
        "state_dict_key": "model",
        "architecture": "unet2d",
        "sample_shape": [3, 8, 8],
        "prediction_type": "epsilon",
        "schedule": {"kind": "linear", "steps": 1000},
        "num_classes": 10,
        "null_label": 10,
        "config": config or TINY_COND_CONFIG,
    }
    return entry | fields


HOSTILE_UNET = {  # the issue's: 176,195 parameters (0.7 MB), attention over all 65,536 pixels of a 256x256 image
    "_class_name": "UNet2DModel",
    "sample_size": 256,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 1,
    "block_out_channels": [32],
    "down_block_types": ["AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D"],
}
TINY = {"block_out_channels": [8, 16, 16], "attention_head_dim": 8}

MNIST_UNET = {"family": "pixel", "format": "diffusers-unet", "sample_shape": [1, 28, 28]}  # a UNet2DModel folder
APP_MODELS = [  # the app tests' zoo (write_app_zoo)
    {
        "name": "tiny-uncond",
        "title": "Tiny unconditional",
        "path": "tiny-uncond",
        **MNIST_UNET,
        "prediction_type": "epsilon",
        "schedule": {"kind": "linear"},
        "data": "mnist",
    },
    {
        "name": "tiny-cond",
        "title": "Tiny conditional",
        "path": "tiny-cond",
        **MNIST_UNET,
        "prediction_type": "v_prediction",
        "schedule": {"kind": "cosine"},
        "num_classes": 10,
        "null_label": 10,
        "data": "mnist",
    },
    {  # autoguidance's guide for tiny-cond: the same classes, other weights
        "name": "tiny-cond-guide",
        "title": "Tiny conditional guide",
        "path": "tiny-cond-guide",
        **MNIST_UNET,
        "prediction_type": "epsilon",
        "schedule": {"kind": "cosine"},
        "num_classes": 10,
        "null_label": 10,
        "data": "mnist",
    },
    {
        "name": "mnist-lenet",
        "title": "LeNet",
        "family": "classifier",
        "format": "hub-mixin",
        "architecture": "lenet",
        "path": "mnist-lenet",
        "num_classes": 10,
        "run": "mnist-lenet/run",
    },
    {
        "name": "hub-only",
        "title": "Needs the Hub",
        "family": "pixel",
        "format": "diffusers-pipeline",
        "repo": "someone/not-cached",
        "sample_shape": [1, 28, 28],
        "prediction_type": "epsilon",
        "schedule": "scheduler_config",
    },
]


def write_app_zoo(root: Path) -> Path:
    """Tiny untrained MNIST-shaped models + the bundled classifier under `root`, and their manifest."""
    from core.models.unet import build_unet, unet_config

    for name, classes, seed in (("tiny-uncond", None, 0), ("tiny-cond", 10, 0), ("tiny-cond-guide", 10, 1)):
        torch.manual_seed(seed)
        build_unet(unet_config(classes, **TINY)).save_pretrained(root / name, safe_serialization=True)
    shutil.copytree(MANIFEST.parent / "bundled" / "mnist-lenet", root / "mnist-lenet")
    datasets = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["datasets"]  # the real data sets
    return write_manifest(root, manifest_text(models=APP_MODELS, datasets=datasets))


def save_random_unet_checkpoint(writer, step: int, seed: int, data: str | None = "mnist") -> None:
    """A checkpoint at `step` of `writer`'s run: an untrained TINY MNIST-shaped UNet whose weights come from `seed`,
    saved by the trainer's own checkpoint writer (a linear schedule, epsilon prediction; trained on `data`)."""
    from core.diffusion.schedules import make_schedule
    from core.models.unet import build_unet, unet_config
    from core.runs.checkpoints import save_checkpoint

    config = unet_config(None, **TINY)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = build_unet(config)
    save_checkpoint(
        writer.checkpoint_folder(step),
        unet,
        "diffusion_pytorch_model.safetensors",
        {"_class_name": "UNet2DModel", **config},
        make_schedule("linear"),
        "epsilon",
        step=step,
        **({} if data is None else {"data": data}),
    )


def write_ddim_folder(folder: Path, spacing: str = "leading", seed: int = 2) -> Path:
    """A pipeline folder (unet/ + scheduler/) of a TINY MNIST-shaped UNet whose scheduler config diffusers' own
    DDIMScheduler wrote (clip_sample on, steps_offset 1, `spacing`): the pages sample it as its pipeline would."""
    from diffusers import DDIMScheduler

    from core.models.unet import build_unet, unet_config

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        build_unet(unet_config(None, **TINY)).save_pretrained(folder / "unet", safe_serialization=True)
    DDIMScheduler(clip_sample=True, steps_offset=1, timestep_spacing=spacing).save_pretrained(folder / "scheduler")
    return folder


DDIM_MODELS = [  # the app zoo's models and two pipelines with diffusers' DDIM configs (write_ddim_zoo)
    *APP_MODELS,
    *(
        {
            "name": f"tiny-ddim-{spacing}",
            "title": f"Tiny DDIM pipeline ({spacing})",
            "path": f"tiny-ddim-{spacing}",
            "family": "pixel",
            "format": "diffusers-pipeline",
            "sample_shape": [1, 28, 28],
            "prediction_type": "epsilon",
            "schedule": "scheduler_config",
            "data": "mnist",
        }
        for spacing in ("leading", "linspace")
    ),
]


def write_ddim_zoo(app_zoo: Path) -> Path:
    """A second manifest beside the app zoo's (`write_app_zoo`), with the same models and two DDIM pipelines."""
    root = app_zoo.parent
    for spacing in ("leading", "linspace"):
        if not (root / f"tiny-ddim-{spacing}").exists():
            write_ddim_folder(root / f"tiny-ddim-{spacing}", spacing)
    datasets = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["datasets"]
    path = root / "models-ddim.toml"
    path.write_text(manifest_text(models=DDIM_MODELS, datasets=datasets), encoding="utf-8")
    return path
