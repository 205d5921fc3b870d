"""What each guidance method trades (core/diffusion/guidance.py), measured.

    python -m bench.guidance --exact            # the two-class 2-D mixture: exact log p(x | c), off support, coverage
    python -m bench.guidance [--n 300] [--models pixel latent]   # both conditional MNIST models
    python -m bench.guidance --models pixel --series cfg auto --scales 1.5 2 3 --n 1000 --sampler ddim

MNIST: per model x method x scale, class accuracy, precision, recall, density, coverage and FD-LeNet with their
standard errors (core/labs/guidance/sweep.py), then where each method has its lowest FD-LeNet, and each method's
lowest FD-LeNet among its scales at least as accurate (within one SE) as CFG's best point.
"""

from __future__ import annotations

import argparse
import time

from bench.common import print_table
from core.diffusion.guidance import Guidance
from core.labs.compare import held_out_features
from core.labs.guidance import exact as ex
from core.labs.guidance.sweep import LAMBDAS, Series, SweepRow, latent_draw, pixel_draw, sweep
from core.labs.latent import latent_diffusion
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry

INTERVAL = (0.28, 5.42)  # sigma range of Kynkäänniemi et al. 2024's interval for EDM2 (in EDM's sigma units)
W = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0)


def plan(scales: tuple[float, ...] = W, only: list[str] | None = None) -> list[Series]:
    """The six series at their papers' usual settings (those of the keys `only`: cfg, interval, rescale, apg,
    cfg++, auto)."""
    every = {
        "cfg": Series("CFG", Guidance(), scales),
        "interval": Series(f"CFG, sigma in {INTERVAL}", Guidance(interval=INTERVAL), scales),
        "rescale": Series("CFG + rescale (phi 0.7)", Guidance(method="rescale"), scales),
        "apg": Series("APG (eta 0, beta -0.5)", Guidance(method="apg"), scales),
        "cfg++": Series("CFG++", Guidance(method="cfg++", scale=0.5), LAMBDAS),
        "auto": Series("Autoguidance", Guidance(method="auto"), scales),
    }
    return [s for key, s in every.items() if only is None or key in only]


def exact(n: int) -> None:
    mix = ex.two_classes()
    for label in (0, 1):
        settings = ex.ExactSettings(label=label, n=n)
        rows = []
        for name, scale, _, r in ex.exact_study(mix, plan((1.0, 2.0, 3.0, 5.0, 8.0)), settings):
            rows.append(
                [name, scale, r.log_p, r.log_p_se, r.off_support, r.off_support_se, r.prdc.coverage, r.prdc.coverage_se]
            )
        print_table(
            f"Exact two-class mixture, class {ex.CLASS_NAMES[label]}: {n} samples per scale, {settings.sampler} "
            f"{settings.steps} Karras steps, guide blur {settings.blur}",
            ["series", "scale", "mean log p(x|c)", "±", "off support", "±", "coverage", "±"],
            rows,
        )


def mnist(n: int, models: list[str], sampler: str, only: list[str] | None, scales: tuple[float, ...]) -> None:
    registry = load_registry()
    classifier = load_model(registry.model("mnist-lenet")).module
    reference = held_out_features(classifier, load_image_set(registry.dataset("mnist"), "test").images)
    draws = {}
    if "pixel" in models:
        pixel = load_model(registry.model("mnist-cond-cfg"))
        guide = load_model(registry.model("mnist-cond-guide")).denoiser
        draws["pixel mnist-cond-cfg"] = lambda s: pixel_draw(pixel, sampler, series=s.guidance, guide=guide)
    if "latent" in models:
        latent = latent_diffusion(load_model(registry.model("mnist-latent-cond")))
        weak = latent_diffusion(load_model(registry.model("mnist-latent-guide")))
        vae = load_model(registry.model("mnist-vae-2d")).module
        draws["latent mnist-latent-cond"] = lambda s: latent_draw(latent, vae, sampler, series=s.guidance, guide=weak)
    for title, make in draws.items():
        rows, by_series = [], {}
        for series in plan(scales, only):
            tic = time.perf_counter()
            kept = list(sweep(make(series), series.scales, n, classifier, reference))
            by_series[series.name] = kept
            for r in kept:
                m = r.prdc
                measures = (r.accuracy, r.accuracy_se, m.precision, m.precision_se, m.recall, m.recall_se)
                rows.append([series.name, r.scale, *measures, m.density, m.coverage, r.fd_lenet, r.fd_se])
            print(f"  {title}: {series.name} took {time.perf_counter() - tic:.0f} s", flush=True)
            for row in rows[-len(kept) :]:
                print("   ", " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row), flush=True)
        header = ["series", "scale", "accuracy", "±", "precision", "±", "recall", "±", "density", "coverage"]
        print_table(f"{title}: {n} samples per scale, {sampler} 20 steps", [*header, "FD-LeNet", "±"], rows)
        if "CFG" in by_series:
            summary(title, by_series)


def summary(title: str, by_series: dict[str, list[SweepRow]]) -> None:
    """Each series' lowest FD-LeNet and its accuracy; and its lowest FD-LeNet at CFG's best accuracy or above."""
    cfg = min(by_series["CFG"], key=lambda r: r.fd_lenet)
    rows = []
    for name, kept in by_series.items():
        best = min(kept, key=lambda r: r.fd_lenet)
        as_accurate = [r for r in kept if r.accuracy >= cfg.accuracy - cfg.accuracy_se]
        match = min(as_accurate, key=lambda r: r.fd_lenet) if as_accurate else None
        rows.append(
            [name, best.scale, best.fd_lenet, best.fd_se, best.accuracy, best.accuracy_se]
            + ([match.scale, match.fd_lenet, match.fd_se, match.fd_lenet - cfg.fd_lenet] if match else ["-"] * 4)
        )
    print_table(
        f"{title}: lowest FD-LeNet per series; and at accuracy >= CFG's best point's ({cfg.accuracy:.3f}, one SE)",
        ["series", "best scale", "FD-LeNet", "±", "accuracy there", "±", "scale", "FD-LeNet", "±", "vs CFG's best"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="samples per scale (MNIST); 2,000 on the mixture")
    parser.add_argument("--exact", action="store_true", help="the exact 2-D mixture instead of MNIST")
    parser.add_argument("--models", nargs="+", default=["pixel", "latent"], choices=["pixel", "latent"])
    parser.add_argument("--sampler", default="dpmpp_2m")
    parser.add_argument("--series", nargs="+", choices=["cfg", "interval", "rescale", "apg", "cfg++", "auto"])
    parser.add_argument("--scales", nargs="+", type=float, default=list(W), help="w (CFG++ keeps its lambdas)")
    args = parser.parse_args()
    if args.exact:
        exact(2000)
    else:
        mnist(args.n, args.models, args.sampler, args.series, tuple(args.scales))


if __name__ == "__main__":
    main()
