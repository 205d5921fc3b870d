"""Ground truth benchmark: the sampler accuracy table, each sampler's fitted order, and exact likelihoods.

    python -m bench.ground_truth [--quick] [--likelihood]

1. What the page waits for: the accuracy table of all 11 samplers x 9 NFE budgets (1 to 200) for 2,000 start
   points, through Streamlit's AppTest (press Measure, the table drawn) and bare
   (core.labs.ground_truth.accuracy.accuracy); median of 3. Target: <= 5 s. (bench/browser.py times the same
   click in a real browser.)
2. Each sampler's fitted order (slope of log error against log NFE over NFE >= 8) on every preset mixture,
   beside the published order: deterministic samplers against the exact ODE end point, stochastic ones by
   their strong error against their own 1,000-NFE run on the same Brownian path.
3. Exact likelihoods: the ODE with the exact denoiser against the closed form on the points the page computes
   (its 40 x 40 heat-map grid and 2,000 held-out draws) for every preset and for narrower blobs, before (RK4 on
   128 uniform steps, sigma up to 500) and now (adaptive Dormand-Prince, `exact_log_density`): the largest gap on
   the grid and on the held-out draws (target: <= 1e-3 nats wherever the point is not marked), the points marked
   (estimated error over 1e-3 nats, or out of calls), the largest estimate, denoiser calls per point and seconds
   (one thread, as the page). Then the page's whole likelihood section (`mixture_likelihood`: closed form, exact
   ODE, a toy model's ODE) and a toy model's log density of 10,000 points by its ODE (32 RK4 steps, as the page,
   exact trace): seconds (target <= 10 s) and held-out NLL against the truth's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from bench.common import print_table, seconds
from core.device import torch_threads
from core.diffusion.likelihood import ODESettings, log_density
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import accuracy, likelihood, mixtures
from core.labs.ground_truth.noise import SIGMA_MIN
from core.labs.toy import ToyRun, ToySettings
from tests.e2e.server import ROOT

# (preset, spread): every preset as it comes, and narrower blobs, whose far tails the grid reaches
LIKELIHOOD_CASES = (
    ("Four unequal blobs", 1.0),
    ("Four unequal blobs", 0.5),
    ("Four unequal blobs", 0.25),
    ("Ring of eight", 1.0),
    ("Ring of eight", 0.25),
    ("Two close modes", 1.0),
    ("Unbalanced pair", 1.0),
    ("One Gaussian", 1.0),
)


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


def _page_points(mix: GaussianMixture) -> torch.Tensor:
    """The points the page's likelihood section computes: its heat-map grid, then its held-out draws."""
    lo, hi = mixtures.view_box(mix)
    mesh = mixtures.grid(lo.tolist(), hi.tolist(), likelihood.LIKELIHOOD_GRID)[2]
    held, _ = mix.sample(likelihood.HELD_OUT, torch.Generator().manual_seed(likelihood.HELD_OUT_SEED))
    return torch.cat([mesh, held])


def exact_ode_table(cases: Sequence[tuple[str, float]]) -> None:
    cells = likelihood.LIKELIHOOD_GRID**2
    rows = []
    for preset, spread in cases:
        mix = mixtures.shaped_mixture(mixtures.PRESETS[preset], spread)
        x = _page_points(mix)
        closed = mix.log_prob(x, SIGMA_MIN)
        mean, var = mixtures.moments(mix)
        before = ODESettings(sigma_min=SIGMA_MIN, sigma_max=500.0, prior_mean=tuple(mean.tolist()), prior_var=var)
        with torch_threads(1):
            tic = time.perf_counter()
            rk4 = log_density(mix.denoise, x, before)
            rk4_s = time.perf_counter() - tic
        tic = time.perf_counter()
        found, _ = likelihood.exact_log_density(mix, x)
        adaptive_s = time.perf_counter() - tic
        name = preset if spread == 1 else f"{preset}, spread x{spread:g}"
        marked = (found.error > likelihood.TRUSTED) | found.capped
        for method, values, secs in (
            ("RK4, 128 steps (before)", rk4, rk4_s),
            ("adaptive (now)", found.value, adaptive_s),
        ):
            gap = (values - closed).abs()
            adaptive = values is found.value
            rows.append(
                [
                    name,
                    f"{float(closed[:cells].min()):.0f}",
                    method,
                    float(gap[:cells].max()),
                    float(gap[cells:].max()),
                    f"{int(marked.sum())} ({int(found.capped.sum())})"
                    if adaptive
                    else f"{int((gap > 1e-3).sum())} unmarked",
                    float(gap[~marked].max()) if adaptive else "-",
                    float(found.error.max()) if adaptive else "-",
                    round(float(found.evals.double().mean())) if adaptive else 4 * 128,
                    secs,
                ]
            )
    print_table(
        f"3a. The exact ODE on the page's {cells:,} grid points and {likelihood.HELD_OUT:,} held-out draws, against "
        "the closed form (nats; one thread)",
        [
            "mixture",
            "lowest log p on the grid",
            "ODE",
            "max gap, grid",
            "max gap, held-out",
            "marked (capped) / over 1e-3",
            "max gap, unmarked",
            "max est. error",
            "calls per point",
            "seconds",
        ],
        rows,
    )


def likelihood_table(n_points: int) -> None:
    mix = mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"])
    x, _ = mix.sample(n_points, torch.Generator().manual_seed(0))
    run = ToyRun(mixtures.mixture_cloud(mix, 2000, seed=0), ToySettings(seed=0))
    run.train(2000)
    tic = time.perf_counter()
    learned = likelihood.model_log_density(run, x.float(), steps=32)
    model_s = time.perf_counter() - tic
    closed = mix.log_prob(x, SIGMA_MIN)
    section = [seconds(lambda: likelihood.mixture_likelihood(mix, run)) for _ in range(3)]
    print_table(
        f"3b. The page's likelihood section on 'Four unequal blobs' ({torch.get_num_threads()} threads for the model, "
        f"one for the exact ODE), and the model's ODE on {n_points:,} draws",
        ["what", "seconds", "NLL nats", "target"],
        [
            [
                "mixture_likelihood: closed form, exact ODE, model ODE (median of 3)",
                statistics.median(section),
                "-",
                "",
            ],
            ["closed form", 0.0, -float(closed.mean()), ""],
            ["ODE, toy model (2,000 points, 2,000 steps; 32 RK4 steps)", model_s, -float(learned.mean()), "<= 10 s"],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer points")
    parser.add_argument("--likelihood", action="store_true", help="only the likelihood tables (3a, 3b)")
    args = parser.parse_args()
    if not args.likelihood:
        page_table(1 if args.quick else 3)
        order_table(500 if args.quick else 2000)
    exact_ode_table(LIKELIHOOD_CASES[:2] if args.quick else LIKELIHOOD_CASES)
    likelihood_table(2000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
