"""The guidance-scale sweep for both conditional MNIST models: class accuracy, within-class diversity and
FD-LeNet per scale, with standard errors (core/labs/guidance.py), and the same with guidance limited to a
sigma interval.

    python -m bench.guidance [--n 200]
"""

from __future__ import annotations

import argparse

from bench.common import print_table
from core.labs.compare import held_out_features
from core.labs.guidance import SCALES, latent_draw, pixel_draw, sweep
from core.labs.latent import latent_diffusion
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry

INTERVAL = (0.28, 5.42)  # sigma range of Kynkäänniemi et al. 2024's interval for EDM2 (in EDM's sigma units)
HEADER = ["model", "guidance", "w", "accuracy", "±", "diversity", "±", "FD-LeNet", "±", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="samples per scale")
    args = parser.parse_args()
    registry = load_registry()
    classifier = load_model(registry.model("mnist-lenet")).module
    reference = held_out_features(classifier, load_image_set(registry.dataset("mnist"), "test").images)
    pixel = load_model(registry.model("mnist-cond-cfg"))
    latent = latent_diffusion(load_model(registry.model("mnist-latent-cond")))
    vae = load_model(registry.model("mnist-vae-2d")).module
    rows = []
    makers = {
        "pixel mnist-cond-cfg": lambda iv: pixel_draw(pixel, interval=iv),
        "latent mnist-latent-cond": lambda iv: latent_draw(latent, vae, interval=iv),
    }
    for title, make in makers.items():
        for label, interval, scales in (("always", None, SCALES), (f"sigma in {INTERVAL}", INTERVAL, (3.0, 5.0, 8.0))):
            for r in sweep(make(interval), scales, args.n, classifier, reference):
                rows.append(
                    [
                        title,
                        label,
                        r.scale,
                        r.accuracy,
                        r.accuracy_se,
                        r.diversity,
                        r.diversity_se,
                        r.fd_lenet,
                        r.fd_se,
                        r.seconds,
                    ]
                )
    print_table(
        f"Guidance sweep, {args.n} samples per scale (spread over the 10 classes), dpmpp_2m, 20 steps", HEADER, rows
    )


if __name__ == "__main__":
    main()
