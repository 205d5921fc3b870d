"""How good the server's up-front estimate of a training job is (core/training/budget.py).

    python -m bench.budget

For each training a page can start, the estimate the page shows before the click beside the bare training
loop's wall time (one thread, as the pages train). The estimate decides whether a job may start at all
(ATLAS_MAX_JOB_SECONDS), so it should land within a factor of two or so; the browser path (bench/browser.py)
adds the live figures' cost on top.
"""

from __future__ import annotations

import time

import torch

from bench.common import print_table, seconds
from core.data.toy import get_toy_set
from core.device import torch_threads
from core.labs.latent import LatentTrainer, LatentTrainSettings, vae_training_seconds
from core.labs.toy import ToyRun, ToySettings, training_seconds
from core.models.init import seeded
from core.models.vae import MLPVAE
from core.training import budget
from core.training.vae import train_vae
from ui.latent.controls import APP_VAE, APP_VAE_MODEL
from zoo.datasets import load_image_set
from zoo.registry import load_registry


def main() -> None:
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


if __name__ == "__main__":
    main()
