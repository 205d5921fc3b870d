"""Latent MNIST page speed: KDE grids, the in-app VAE and latent model at the page's defaults, sampling.

    python -m bench.latent [--repeats 3]

Targets (issue 7): KDE of 5,000 points on a 100 x 100 grid <= 1 s (overall and each class, as the page
draws them); in-app VAE training at its defaults <= 60 s on this CPU. The page's own first render is
timed by bench/pages.py. A quality readout beside the times: how well 10-nearest-neighbour labels in the
latent plane predict held-out digits' classes (the bundled VAE for comparison), and the bundled
classifier's accuracy on decoded guided samples.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from bench.common import print_table
from core.labs.latent import LatentTrainer, LatentTrainSettings, decode_points, encode_means, sample_paths
from core.metrics.images import classify
from core.metrics.kde import kde_densities
from core.models.init import seeded
from core.models.vae import MLPVAE
from core.training.vae import train_vae
from ui.latent.controls import APP_VAE, APP_VAE_MODEL
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry


def _knn(z: np.ndarray, labels: np.ndarray, z_test: np.ndarray, labels_test: np.ndarray) -> float:
    return float(KNeighborsClassifier(10).fit(z, labels).score(z_test, labels_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reg = load_registry()
    train, test = load_image_set(reg.dataset("mnist"), "train"), load_image_set(reg.dataset("mnist"), "test")
    bundled = load_model(reg.model("mnist-vae-2d")).module
    classifier = load_model(reg.model("mnist-lenet")).module
    # 5,000 points as the target names them (offline the training split has 4,500: add held-out digits)
    z = encode_means(bundled, np.concatenate([train.images, test.images])[:5000])
    labels = np.concatenate([train.labels, test.labels])[:5000]

    kde_times = []
    for _ in range(args.repeats):
        tic = time.perf_counter()
        grid = kde_densities(z, labels, "scott", 100)
        kde_times.append(time.perf_counter() - tic)
    print_table(
        f"KDE on a 100 x 100 grid, {len(z):,} latent points (overall + {len(grid.per_class)} classes)",
        ["median s", "min s", "target"],
        [[statistics.median(kde_times), min(kde_times), "<= 1 s"]],
    )

    x = torch.tensor(train.images, dtype=torch.float32) / 255
    vae = seeded(APP_VAE.seed, MLPVAE, **APP_VAE_MODEL)
    tic = time.perf_counter()
    records, _ = train_vae(vae, x, APP_VAE, x[:1000], torch.tensor(train.labels[:1000]))
    vae_seconds = time.perf_counter() - tic
    z_app = encode_means(vae, train.images)
    knn_app = _knn(z_app, train.labels, encode_means(vae, test.images), test.labels)
    knn_bundled = _knn(
        encode_means(bundled, train.images), train.labels, encode_means(bundled, test.images), test.labels
    )
    last = records[-1]
    print_table(
        f"In-app VAE at the page's defaults ({APP_VAE.epochs} epochs, batch {APP_VAE.batch_size}, lr {APP_VAE.lr}, "
        f"{len(x):,} digits, {torch.get_num_threads()} threads)",
        ["seconds", "target", "steps", "reconstruction", "KL", "10-NN held-out accuracy", "bundled VAE's"],
        [[vae_seconds, "<= 60 s", last["step"], last["reconstruction"], last["kl"], knn_app, knn_bundled]],
    )

    settings = LatentTrainSettings()
    trainer = LatentTrainer(z_app, train.labels, settings, "bench")
    tic = time.perf_counter()
    trainer.train()
    latent_seconds = time.perf_counter() - tic
    model = trainer.model()
    rows = []
    for sampler, steps in (("dpmpp_2m", 20), ("euler", 50), ("ddpm", 100)):
        tic = time.perf_counter()
        picks = [sample_paths(model, sampler, steps, 50, seed=c, label=c).samples for c in range(10)]
        seconds = time.perf_counter() - tic
        images = torch.from_numpy(decode_points(vae, torch.cat(picks).numpy())).float()[:, None] / 127.5 - 1
        acc = float((classify(classifier, images)[0] == np.repeat(np.arange(10), 50)).mean())
        rows.append([f"{sampler} {steps}", seconds, acc])
    print_table(
        f"In-app latent model ({settings.steps} steps, {settings.width}x{settings.depth} MLP: {latent_seconds:.1f} s "
        "of training); 500 guided samples (scale 3), 50 per class",
        ["sampler", "sampling s (with paths)", "decoded accuracy (LeNet)"],
        rows,
    )


if __name__ == "__main__":
    main()
