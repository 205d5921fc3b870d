"""How good the server's up-front estimates of jobs are (core/training/budget.py, core/cost.py).

    python -m bench.budget [--only training|sampling|hostile|load]

- training: for each training a page can start, the estimate the page shows before the click beside the bare
  training loop's wall time (one thread, as the pages train);
- sampling: each bundled MNIST model's FLOPs per image and a Samplers page default run (20 steps of DPM-Solver++
  (2M), 16 images; the class-conditional one guided), estimated afresh (the model timed at most twice) and
  again after that run fed its speed, beside the run's wall time (the server's threads: all cores but one);
- hostile: the issue's 0.7 MB UNet with attention at 256x256, named as a local folder: refused in how long;
- load: the estimate's error with a busy-loop process beside the job and without, in the four orders of the
  two (an estimate made idle and a job run loaded is what a speed timed once per process gave).
An estimate decides whether a job may start at all (ATLAS_MAX_JOB_SECONDS), so it should land within a factor
of two or so; the running deadline catches the rest. The browser path (bench/browser.py) adds the live
figures' cost on top.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from bench.common import print_table, seconds
from core import cost
from core.data.toy import get_toy_set
from core.device import torch_threads, use_threads
from core.labs.latent import LatentTrainer, LatentTrainSettings, vae_training_seconds
from core.labs.toy import ToyRun, ToySettings, training_seconds
from core.models.init import seeded
from core.models.vae import MLPVAE
from core.training import budget
from core.training.vae import train_vae
from tests.zoo_fixtures import HOSTILE_UNET
from ui.latent.controls import APP_VAE, APP_VAE_MODEL
from zoo.datasets import load_image_set
from zoo.registry import load_registry


def training() -> None:
    tic = time.perf_counter()
    a, b = budget.step_cost()
    print(f"step cost measured in {time.perf_counter() - tic:.2f} s: a = {a * 1e3:.2f} ms, b = {b:.3g} s")
    rows = []
    cloud = get_toy_set("swiss_roll").cloud(10_000, seed=0)
    for label, settings, steps in (
        ("toy lab, defaults", ToySettings(), 1000),
        ("toy lab, 256 x 4, batch 2048", ToySettings(width=256, depth=4, batch_size=2048), 200),
        ("toy lab, 512 x 8, batch 4096", ToySettings(width=512, depth=8, batch_size=4096), 10),
    ):
        run = ToyRun(cloud, settings)
        rows.append([label, training_seconds(settings, 2, steps), seconds(lambda run=run, n=steps: run.train(n))])
    images = load_image_set(load_registry().dataset("mnist"), "train")
    x = torch.tensor(images.images, dtype=torch.float32) / 255
    vae = seeded(APP_VAE.seed, MLPVAE, **APP_VAE_MODEL)
    estimate = vae_training_seconds(APP_VAE, len(x), budget.count_parameters(vae))
    labels = torch.tensor(images.labels[:100])
    with torch_threads(1):
        rows.append(
            ["latent page VAE, defaults", estimate, seconds(lambda: train_vae(vae, x, APP_VAE, x[:100], labels))]
        )
        z = torch.randn(len(images.labels), 2, generator=torch.Generator().manual_seed(0)).numpy()
        settings = LatentTrainSettings()
        trainer = LatentTrainer(z, images.labels, settings, "latent-bench")
        rows.append(["latent model, defaults", settings.seconds(), seconds(trainer.train)])
    print_table(
        "Up-front estimates of training jobs against their bare training loop (one thread)",
        ["job", "estimated s", "measured s", "measured / estimated"],
        [[job, est, real, real / est] for job, est, real in rows],
    )


SAMPLING_JOBS = (
    ("mnist-ddpm-linear", {}),
    ("mnist-v-cosine", {}),
    ("mnist-flow", {}),
    ("mnist-cond-cfg", {"label": 3, "guidance": 3.0}),
)


def sampling() -> None:
    from core.labs.samplers import SamplerSettings, run_sampler, sampling_seconds
    from zoo.loaders import load_model

    rows = []
    for name, fields in SAMPLING_JOBS:
        model, settings = load_model(load_registry().model(name)), SamplerSettings(**fields)
        cost.forget()  # as a fresh server process would
        tic = time.perf_counter()
        first = sampling_seconds(model, settings)
        asked = time.perf_counter() - tic
        real = run_sampler(model, settings).seconds
        again = sampling_seconds(model, settings)  # fed by that run
        real_again = run_sampler(model, replace(settings, seed=1)).seconds
        gflop = model.flops_per_image / 1e9
        rows.append([name, gflop, asked * 1e3, first, real, real / first, again, real_again, real_again / again])
    print_table(
        f"Samplers default run (20 steps of DPM-Solver++ (2M), 16 images), {torch.get_num_threads()} thread(s)",
        [
            "model",
            "GFLOP/image",
            "estimate took ms",
            "estimated s",
            "took s",
            "ratio",
            "then estimated s",
            "took s",
            "ratio",
        ],
        rows,
    )


def hostile() -> None:
    from diffusers import UNet2DModel

    from zoo.errors import TooLargeError
    from zoo.local import local_entry

    with tempfile.TemporaryDirectory() as folder:
        UNet2DModel(**{k: v for k, v in HOSTILE_UNET.items() if k != "_class_name"}).save_pretrained(folder)
        size = (Path(folder) / "diffusion_pytorch_model.safetensors").stat().st_size
        (Path(folder) / "config.json").write_text(json.dumps(HOSTILE_UNET))
        tic = time.perf_counter()
        try:
            local_entry(folder, trusted=True)
            outcome = "accepted"
        except TooLargeError as refused:
            outcome = str(refused)
        took = time.perf_counter() - tic
    print(f"\n### The issue's UNet ({size / 1e6:.2f} MB of weights) named as a local folder\n")
    print(f"answered in {took * 1e3:.0f} ms (its config's FLOPs counted on the meta device): {outcome}")


@contextmanager
def busy() -> Iterator[None]:
    """A busy-loop process beside the job (on whichever core the system gives it)."""
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        loop.kill()
        loop.wait()


def load() -> None:
    from core.labs.samplers import SamplerSettings, run_sampler, sampling_seconds
    from zoo.loaders import load_model

    model, settings = load_model(load_registry().model("mnist-ddpm-linear")), SamplerSettings()
    rows = []

    def job(label: str, estimate: float) -> None:
        real = run_sampler(model, settings).seconds
        rows.append([label, estimate, real, real / estimate])

    cost.forget()
    job("estimated idle, run idle", sampling_seconds(model, settings))
    estimate = sampling_seconds(model, settings)
    with busy():
        job("estimated idle, run loaded (a speed timed once)", estimate)
        cost.forget()
        job("estimated loaded, run loaded", sampling_seconds(model, settings))
        estimate = sampling_seconds(model, settings)  # fed by the loaded run
    job("estimated loaded, run idle", estimate)
    job("then estimated again, run idle", sampling_seconds(model, settings))
    print_table(
        f"A Samplers default run of mnist-ddpm-linear, with a busy-loop process beside it or not, "
        f"{torch.get_num_threads()} thread(s)",
        ["when", "estimated s", "took s", "took / estimated"],
        rows,
    )


SECTIONS = {"training": training, "sampling": sampling, "hostile": hostile, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SECTIONS), action="append", help="run only these sections")
    args = parser.parse_args()
    use_threads("server")  # the estimates are the server's, on its threads
    for name in args.only or SECTIONS:
        SECTIONS[name]()


if __name__ == "__main__":
    main()
