"""Toy lab benchmark: training to a good fit, sampling and drift-field speed, on this machine's CPU.

    python -m bench.toy [--quick]

1. Training at the page's default settings (ToySettings(), 1000 steps) on two moons and the swiss roll:
   wall time, then the sliced Wasserstein-2 distance (standardised units, 10,000 Euler-50 samples against
   10,000 fresh points, as the page measures it) beside what two fresh data sets of that size read (the range
   of 10 draws, core/labs/toy.reference). Targets: SW2 <= 0.1 within 5 s.
2. Sampling 10,000 points with 50 steps (the page's default sampler, Euler, and three others). Target <= 1 s.
3. A 30x30 drift field at 10 times: the learned model, and the exact mixture field. Target <= 1 s.
Each timing is the median of interleaved repeats, with one intra-op thread (the lab's setting) and with
the machine's default; the lab uses one because small ops gain nothing from two and a busy core stalls them.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from bench.common import interleaved_medians, print_table
from core.data.toy import get_toy_set
from core.device import torch_threads
from core.diffusion.fields import drift_field, mesh
from core.diffusion.samplers import SAMPLERS
from core.labs.toy import ToyRun, ToySettings, distances, reference, run_sampler

TRAIN_STEPS = 1000  # the page's default
DEFAULT_THREADS = torch.get_num_threads()


def training_table(repeats: int) -> dict[str, ToyRun]:
    rows, runs = [], {}
    for name in ("moons", "swiss_roll"):
        cloud = get_toy_set(name).cloud(10_000, seed=0)
        for threads in sorted({1, DEFAULT_THREADS}):
            times, fits = [], []
            for rep in range(repeats if threads == 1 else 1):  # the default-thread rows only for contrast
                run = ToyRun(cloud, ToySettings(seed=rep), threads=threads)
                tic = time.perf_counter()
                run.train(TRAIN_STEPS)
                times.append(time.perf_counter() - tic)
                result = run_sampler(run, "euler", 50, 10_000, seed=rep)
                fits.append((distances(result, run, rep)["swd"], reference(result, run)["swd"].span()))
                runs.setdefault(name, run)
            best = sorted(times)[len(times) // 2]
            swd = sorted(f[0] for f in fits)[len(fits) // 2]
            ok = "yes" if best <= 5 and swd <= 0.1 else "NO"
            rows.append([name, threads, TRAIN_STEPS, best, swd, fits[0][1], ok])
    s = ToySettings()
    print_table(
        f"1. Training at the defaults ({s.width}x{s.depth} MLP, batch {s.batch_size}, lr {s.lr}, "
        f"{s.prediction_type}, {s.schedule} T={s.T}), median of {repeats} seeds (1 thread)",
        ["data", "threads", "steps", "train s", "SW2 to fresh data", "SW2, two fresh sets", "<= 5 s and SW2 <= 0.1"],
        rows,
    )
    return runs


def sampling_table(run: ToyRun, repeats: int) -> None:
    rows = []
    for name in ("euler", "ddpm", "dpmpp_2m", "heun"):
        steps = 25 if SAMPLERS[name].calls_per_step == 2 else 50
        fns = []
        for threads in sorted({1, DEFAULT_THREADS}):

            def fn(threads=threads, name=name, steps=steps):
                run.threads = threads
                run_sampler(run, name, steps, 10_000, seed=0)

            fns.append(fn)
        times = interleaved_medians(fns, repeats)
        nfe = SAMPLERS[name].nfe(steps)
        rows.append([SAMPLERS[name].title, steps, nfe, *times, "yes" if min(times) <= 1 else "NO"])
    run.threads = 1
    heads = [f"s, {t} thread{'s' if t > 1 else ''}" for t in sorted({1, DEFAULT_THREADS})]
    print_table(
        "2. Sampling 10,000 points (trajectory of 1,000 recorded), median of interleaved repeats",
        ["sampler", "steps", "NFE", *heads, "<= 1 s"],
        rows,
    )


def field_table(runs: dict[str, ToyRun], repeats: int) -> None:
    times = torch.linspace(1.0, 0.02, 10, dtype=torch.float64)
    rows = []
    mix_run = ToyRun(get_toy_set("eight_gaussians").cloud(10_000), ToySettings(), threads=1)
    mix_run.train(20)
    st = mix_run.standardizer
    exact = st.mixture(mix_run.cloud.mixture).denoise
    for label, run, denoiser in (
        ("learned (moons model)", runs["moons"], runs["moons"].denoiser()),
        ("exact (8 Gaussians)", mix_run, exact),
    ):
        y = run.standardizer.transform(run.cloud.points.double())
        lo, hi = y.min(0).values.min(), y.max(0).values.max()
        _, pts = mesh(torch.stack([lo, lo]), torch.stack([hi, hi]), 30)  # a square box: 30 x 30 points
        fns = []
        for threads in sorted({1, DEFAULT_THREADS}):

            def fn(threads=threads, run=run, denoiser=denoiser, pts=pts):
                with torch_threads(threads):
                    drift_field(denoiser, run.schedule, pts, times)

            fns.append(fn)
        medians = interleaved_medians(fns, repeats)
        rows.append([label, f"{len(pts)} points", len(times), *medians, "yes" if min(medians) <= 1 else "NO"])
    heads = [f"s, {t} thread{'s' if t > 1 else ''}" for t in sorted({1, DEFAULT_THREADS})]
    print_table(
        "3. Drift field (velocity and score) on a grid at 10 times", ["field", "grid", "times", *heads, "<= 1 s"], rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed and fewer repeats (a smoke run)")
    args = parser.parse_args()
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, default intra-op threads {DEFAULT_THREADS}")
    runs = training_table(repeats=1 if args.quick else 3)
    sampling_table(runs["moons"], repeats=2 if args.quick else 5)
    field_table(runs, repeats=2 if args.quick else 5)


if __name__ == "__main__":
    main()
