"""Comparing your own checkpoints: loading a local 35.7M-parameter UNet folder, and `zoo compare`'s overhead.

    python -m bench.compare

1. A diffusers UNet folder of google/ddpm-cifar10-32's architecture (35.7M parameters, random weights, written
   by diffusers' save_pretrained with its scheduler config) loaded through zoo/local.py as the app and the
   command line load it. "cold": its files dropped from the OS page cache first (posix_fadvise DONTNEED), then
   loaded in a fresh process; "warm": loaded again in that process (files in the page cache); "resource
   cache": the page's second request (ui/common/cache.local_model: checks the path, then a cache hit).
2. `python -m zoo compare` (the `compare` function it calls, in process) against bare sampling of the same
   models: the same sampler, steps, seeds and images through core.labs.compare.sample_many, models loaded
   beforehand, the two run in turn. Their difference is within the sampling's own noise, so the overhead is
   also measured directly: compare's wall time less the sampling time it reports (loading, the grid, the
   tables). Target <= 5%.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import print_table

CIFAR10_DDPM = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": [128, 256, 256, 256],
    "norm_num_groups": 32,
    "attention_head_dim": None,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}

_LOAD_ONCE = """
import json, sys, time
from diffusers import UNet2DModel  # imported already in a running app: not part of a load
from zoo.local import local_entry
from zoo.loaders import load_model
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    model = load_model(local_entry(sys.argv[1], trusted=True))
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "parameters": model.param_count}))
"""


def _drop_from_page_cache(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def local_load(repeats: int = 3) -> None:
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ddpm-cifar10-like"
        torch.manual_seed(0)
        UNet2DModel(**CIFAR10_DDPM).save_pretrained(folder)
        DDPMScheduler(beta_schedule="linear").save_config(folder)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
        cold, warm = [], []
        for _ in range(repeats):
            _drop_from_page_cache(folder)
            out = subprocess.run(
                [sys.executable, "-c", _LOAD_ONCE, str(folder), "3"],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            cold.append(result["times"][0])
            warm += result["times"][1:]
        os.environ["ATLAS_ALLOWED_ROOTS"] = tmp
        from ui.common.cache import local_model

        local_model(str(folder), device="cpu")
        start = time.perf_counter()
        for _ in range(20):
            local_model(str(folder), device="cpu")
        hit = (time.perf_counter() - start) / 20
    print_table(
        f"Loading a local UNet folder ({result['parameters'] / 1e6:.1f}M parameters, {size:.0f} MB, fp32 safetensors)",
        ["load", "seconds (median)", "runs"],
        [
            ["cold (page cache dropped, fresh process)", statistics.median(cold), len(cold)],
            ["warm (same process, files cached)", statistics.median(warm), len(warm)],
            ["resource cache (the page's next request)", hit, 20],
        ],
    )


def compare_overhead(images: int = 64, steps: int = 20, repeats: int = 5) -> None:
    from core.labs.compare import sample_many, settings_for
    from zoo.compare import compare
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    registry = load_registry()
    names = ["mnist-ddpm-linear", "mnist-v-cosine"]
    models = [load_model(registry.model(n)) for n in names]
    bare_times, cli_times, outside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats + 1):  # the first round warms up
            start = time.perf_counter()
            for model in models:
                sample_many(model, settings_for(model, "dpmpp_2m", steps, 0, images, None), images)
            bare = time.perf_counter() - start
            start = time.perf_counter()
            rows = compare(names, registry, Path(tmp) / "out", steps=steps, images=images, log=lambda _: None)
            cli = time.perf_counter() - start
            if k:
                bare_times.append(bare)
                cli_times.append(cli)
                sampling = sum(row["sample_seconds"] for row in rows)
                outside.append((cli - sampling) / sampling)
    bare, cli = statistics.median(bare_times), statistics.median(cli_times)
    print_table(
        f"`zoo compare` vs bare sampling ({len(names)} MNIST models, dpmpp_2m, {steps} steps, {images} images each)",
        ["", f"seconds (median of {repeats})"],
        [
            ["bare sampling (models loaded)", bare],
            ["zoo compare (load, sample, grid, CSV, JSON)", cli],
            ["difference (within the sampling's noise)", f"{(cli - bare) / bare:+.1%}"],
            ["overhead: time outside sampling / sampling", f"{statistics.median(outside):.1%} (target <= 5%)"],
        ],
    )


if __name__ == "__main__":
    local_load()
    compare_overhead()
