"""Round-trip error of deterministic inversion on pixel MNIST: held-out digits inverted to noise by each sampler
and sampled back on the same grid (core/diffusion/inversion.py), against the number of steps.

    python -m bench.inversion [--images 32]

"ODE" is the error at sigma_min (the two ODE solves only; it falls at the sampler's order), "full" includes
sampling's last step to sigma = 0 (the denoiser's x_0 estimate, which no ODE step undoes). Errors are the RMS
over pixels in [-1, 1], mean over the digits.
"""

from __future__ import annotations

import argparse
import time

from bench.common import print_table
from core.data.images import uint8_to_tensor
from core.diffusion.denoisers import clip_denoised
from core.diffusion.inversion import round_trip
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry

SAMPLERS = ("ddim", "heun", "dpmpp_2m")
STEPS = (10, 20, 50, 100, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--model", default="mnist-ddpm-linear")
    args = parser.parse_args()
    registry = load_registry()
    model = load_model(registry.model(args.model))
    digits = uint8_to_tensor(load_image_set(registry.dataset("mnist"), "test").images[: args.images])
    rows = []
    for name in SAMPLERS:
        for steps in STEPS:
            sigmas = model.schedule.sampling_sigmas(steps, "trailing", max_sigma=model.schedule.sampling_cap)
            tic = time.perf_counter()
            result = round_trip(name, model.denoiser, digits, sigmas)
            clipped = float(round_trip(name, clip_denoised(model.denoiser), digits, sigmas).error.mean())
            rows.append(
                [
                    name,
                    steps,
                    float(result.ode_error.mean()),
                    float(result.error.mean()),
                    clipped,
                    float(result.noise.std() / sigmas[0]),
                    time.perf_counter() - tic,
                ]
            )
    print_table(
        f"Inversion round trip on {args.images} held-out digits, {args.model} (trailing grid)",
        [
            "sampler",
            "steps",
            "RMS error, ODE (at sigma_min)",
            "RMS error, full",
            "full, x_0 clipped",
            "std of noise / sigma_max",
            "seconds (both ways, twice)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
