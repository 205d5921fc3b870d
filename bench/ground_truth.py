"""Ground truth benchmark: the sampler accuracy table, each sampler's fitted order, and exact likelihoods.

    python -m bench.ground_truth [--quick]

1. What the page waits for: the accuracy table of all 11 samplers x 9 NFE budgets (1 to 200) for 2,000 start
   points, through Streamlit's AppTest (press Measure, the table drawn) and bare
   (core.labs.ground_truth.accuracy.accuracy); median of 3. Target: <= 5 s. (bench/browser.py times the same
   click in a real browser.)
2. Each sampler's fitted order (slope of log error against log NFE over NFE >= 8) on every preset mixture,
   beside the published order: deterministic samplers against the exact ODE end point, stochastic ones by
   their strong error against their own 1,000-NFE run on the same Brownian path.
3. Exact likelihoods: the ODE with the exact denoiser against the closed form on 10,000 draws (max gap, nats;
   target <= 1e-3), and a toy model's log density of 10,000 points by its ODE (32 RK4 steps, as the page, exact trace):
   seconds (target <= 10 s) and held-out NLL against the truth's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.common import print_table, seconds
from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import accuracy, likelihood, mixtures
from core.labs.toy import ToyRun, ToySettings
from tests.e2e.server import ROOT


def page_table(repeats: int) -> None:
    from streamlit.testing.v1 import AppTest

    mix = mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"])
    bare = [seconds(lambda: accuracy.accuracy(mix, 2000)) for _ in range(repeats)]
    page = []
    for _ in range(repeats):
        at = AppTest.from_file(str(ROOT / "app_pages" / "ground_truth.py"), default_timeout=300).run()
        at.number_input(key="gt-acc-n").set_value(2000)
        button = at.button(key="gt-acc-go").click()
        page.append(seconds(button.run))
        assert not at.exception and any("Order (fitted)" in d.value.columns for d in at.dataframe)
    print_table(
        "1. The accuracy table, 11 samplers x 9 NFE budgets, 2,000 start points (median of "
        f"{repeats}, CPU, {torch.get_num_threads()} threads)",
        ["path", "seconds", "target <= 5 s"],
        [
            ["AppTest: press Measure, table and charts drawn", statistics.median(page), statistics.median(page) <= 5],
            ["core.labs.ground_truth.accuracy.accuracy alone", statistics.median(bare), statistics.median(bare) <= 5],
        ],
    )


def order_table(n_points: int) -> None:
    fitted = {}
    for preset, rows in mixtures.PRESETS.items():
        table = accuracy.accuracy(mixtures.shaped_mixture(rows), n_points)
        fitted[preset] = {row.name: row for row in table.rows}
    out = []
    for name, spec in SAMPLERS.items():
        first = fitted["Four unequal blobs"][name]
        measure = "strong, same Brownian path" if first.stochastic else "exact ODE"
        cells: list[object] = [name, measure, "-" if first.stochastic else spec.order]  # theory: deterministic only
        for preset in mixtures.PRESETS:
            order = fitted[preset][name].order
            cells.append("n/a" if order is None else round(order, 2))
        cells.append(first.errors[-1])
        out.append(cells)
    print_table(
        f"2. Fitted order (NFE >= 8; strong errors up to 64) per preset, {n_points} start points; last column: RMS "
        "error at NFE 200 on 'Four unequal blobs'",
        ["sampler", "measured against", "theory", *mixtures.PRESETS, "error @200"],
        out,
    )


def likelihood_table(n_points: int) -> None:
    mix = mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"])
    x, _ = mix.sample(n_points, torch.Generator().manual_seed(0))
    tic = time.perf_counter()
    ode, closed = likelihood.exact_log_density(mix, x)
    exact_s = time.perf_counter() - tic
    run = ToyRun(mixtures.mixture_cloud(mix, 2000, seed=0), ToySettings(seed=0))
    run.train(2000)
    tic = time.perf_counter()
    learned = likelihood.model_log_density(run, x.float(), steps=32)
    model_s = time.perf_counter() - tic
    print_table(
        f"3. Exact likelihoods on {n_points:,} draws of 'Four unequal blobs'",
        ["density", "seconds", "NLL nats", "max |gap to closed form| nats", "target"],
        [
            ["closed form", 0.0, -float(closed.mean()), 0.0, ""],
            [
                "ODE, exact denoiser (128 RK4 steps)",
                exact_s,
                -float(ode.mean()),
                float((ode - closed).abs().max()),
                "gap <= 1e-3",
            ],
            [
                "ODE, toy model (2,000 points, 2,000 steps; 32 RK4 steps)",
                model_s,
                -float(learned.mean()),
                "-",
                "<= 10 s",
            ],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer points")
    args = parser.parse_args()
    page_table(1 if args.quick else 3)
    order_table(500 if args.quick else 2000)
    likelihood_table(2000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
