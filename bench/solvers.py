"""Few-step solvers and step grids: on the exact mixture (fitted orders) and on the bundled MNIST models (FD-LeNet).

    python -m bench.solvers --ground-truth            # fitted order of every deterministic solver x grid, 5 presets
    python -m bench.solvers --mnist mnist-flow [--samples 1000] [--out rows.jsonl]

--ground-truth: core/labs/ground_truth/grids.grid_study on each preset mixture (500 start points, seed 0): the
fitted order (the slope over NFE 8 to 32) of each deterministic solver on each grid, and the error at NFE 5.

--mnist: FD-LeNet (1,000 samples, seed 0, the cards' protocol: bench/zoo_quality.py) at NFE 3, 4, 5, 6, 8 and 10
for every deterministic solver on the Karras grid, the log-SNR grid and a grid searched for that model, solver and
NFE (core/labs/samplers.GridSearcher, as the Samplers page searches: the RMS distance of 8 warm-up samples, from
noise apart from the measured samples, to a fine teacher's end points, UniPC-3 on 100 log-SNR steps; one sweep).
The reference row is the same model at NFE 50 (DPM-Solver++(2M), trailing grid, as its card). Every row is also
written as JSON to --out as it is measured, so a long run that is cut short keeps its rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from bench.common import print_table
from bench.zoo_quality import generate, score
from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import grids as gt_grids
from core.labs.ground_truth.accuracy import steps_for
from core.labs.ground_truth.mixtures import PRESETS, shaped_mixture
from core.labs.samplers import SEARCH_IMAGES, GridSearcher, SamplerSettings
from core.metrics.images import classify
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry

SOLVERS = ("euler", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_3m", "unipc", "deis", "ipndm")
NFES = (3, 4, 5, 6, 8, 10)
GRIDS = ("karras", "log-snr", "searched")


def ground_truth(full: bool = False) -> None:
    """Two summaries over the five presets (and with `full`, every preset's row): each solver's fitted order on
    each grid (its range over the presets), and its error at NFE 5 on each grid beside the Karras grid's (the
    median ratio over the presets: below 1, better than Karras)."""
    curves: dict[tuple[str, str], list] = {}
    rows = []
    for name, shape in PRESETS.items():
        study = gt_grids.grid_study(shaped_mixture(shape), samplers=SOLVERS, grids=tuple(gt_grids.GRIDS))
        for curve in study.curves:
            curves.setdefault((curve.sampler, curve.grid), []).append(curve)
            order = "–" if curve.order is None else f"{curve.order:.2f}"
            rows.append([name, curve.sampler, curve.grid, order, f"{curve.error_within(5):.3g}"])
        print(f"{name}: {study.seconds:.1f} s", flush=True)
    if full:
        print_table("Every preset", ["mixture", "solver", "grid", "order", "error at NFE <= 5"], rows)
    grids = list(gt_grids.GRIDS)
    orders, ratios = [], []
    for solver in SOLVERS:
        cells, rel = [solver], [solver]
        for grid in grids:
            found = [c.order for c in curves[solver, grid] if c.order is not None]
            cells.append(f"{min(found):.2f}–{max(found):.2f}" if found else "–")
            pairs = zip(curves[solver, grid], curves[solver, "karras"], strict=True)
            rel.append(f"{statistics.median(c.error_within(5) / k.error_within(5) for c, k in pairs):.2f}")
        orders.append(cells)
        ratios.append(rel)
    print_table(
        "Fitted order (NFE 8-32) against the exact ODE end point: its range over the five presets (500 points)",
        ["solver", *grids],
        orders,
    )
    print_table(
        "Error at NFE <= 5 over the Karras grid's: the median over the five presets (below 1: better than Karras)",
        ["solver", *grids],
        ratios,
    )


def mnist(name: str, samples: int, out: Path | None) -> None:
    reg = load_registry()
    classifier = load_model(reg.model("mnist-lenet")).module
    held = load_image_set(reg.dataset("mnist"), "test")
    _, held_feats = classify(classifier, torch.from_numpy(held.images.copy()).float() / 127.5 - 1)
    loaded = load_model(reg.model(name))
    schedule = loaded.schedule
    top = schedule.sampling_cap or schedule.sigma_max
    rows = []

    def keep(row: dict) -> None:
        rows.append(row)
        print(row, flush=True)
        if out is not None:
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")

    tic = time.perf_counter()
    images = generate(loaded, "dpmpp_2m", 50, samples, seed=0)
    keep({"model": name, "solver": "dpmpp_2m", "grid": "trailing", "NFE": 50, **score(classifier, images, held_feats)})
    keep_s = time.perf_counter() - tic
    searcher = GridSearcher(loaded, SamplerSettings(clip=loaded.entry.family == "pixel"), SEARCH_IMAGES)
    for solver in SOLVERS:
        spec = SAMPLERS[solver]
        for nfe in NFES:
            steps = steps_for(spec, nfe)
            for grid in GRIDS:
                tic = time.perf_counter()
                if grid == "searched":
                    found = searcher.search(SamplerSettings(sampler=solver, steps=steps))
                    sigmas = found.grids["searched"]
                else:
                    sigmas = schedule.sampling_sigmas(steps, grid, max_sigma=top)
                search_s = time.perf_counter() - tic
                images = generate(loaded, solver, steps, samples, seed=0, sigmas=sigmas.float())
                row = {"model": name, "solver": solver, "grid": grid, "NFE": spec.nfe(steps)}
                row |= score(classifier, images, held_feats)
                row |= {"sigmas": [round(float(s), 4) for s in sigmas[:-1]], "search s": round(search_s, 1)}
                keep(row)
    print(f"reference run: {keep_s:.0f} s")
    print_table(
        f"{name}: FD-LeNet of {samples:,} samples (seed 0) to {len(held):,} held-out digits, x_0 clipped",
        ["solver", "grid", "NFE", "FD-LeNet"],
        [[r["solver"], r["grid"], r["NFE"], r["FD-LeNet"]] for r in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ground-truth", action="store_true")
    parser.add_argument("--full", action="store_true", help="with --ground-truth: every preset's rows too")
    parser.add_argument("--mnist", choices=("mnist-ddpm-linear", "mnist-flow"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.ground_truth:
        ground_truth(args.full)
    if args.mnist:
        mnist(args.mnist, args.samples, args.out)


if __name__ == "__main__":
    main()
