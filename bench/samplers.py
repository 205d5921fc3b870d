"""Sampler benchmark: accuracy against exact answers, loop overhead, and speed against diffusers.

    python -m bench.samplers [--quick]

1. Error vs NFE on a 2-D Gaussian mixture with its exact denoiser (core/labs/ground_truth/accuracy.py, the
   Ground truth page's measure). Deterministic samplers: RMS distance to the exact probability-flow ODE end
   point from the same start (4th-order LMS on 2,000 steps, converged to an RMS below 1e-7). Stochastic samplers: their
   strong error, the RMS distance to their own 1,000-NFE run driven by the same Brownian path, which carries
   no sampling noise of its own (a distance to fresh data could not rank them: two fresh 2,000-point sets
   are further apart than the samplers are from the data).
2. Loop overhead on a small UNet2DModel on the CPU: sampler loop time / the time spent inside its NFE
   denoiser calls, both measured in the same run (so machine drift cannot bias the ratio).
3. Our ddim and dpmpp_2m against diffusers' DDIMScheduler / DPMSolverMultistepScheduler loops on the same
   UNet, timesteps and noise; alternating runs, the median time ratio (ours / diffusers), and each loop's
   own cost per step (its time outside the UNet), which the UNet's run-to-run noise does not blur.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from bench.common import diffusers_loop, print_table, seconds
from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.samplers import SAMPLERS, sample
from core.diffusion.schedules import NoiseSchedule
from core.labs.ground_truth.accuracy import accuracy
from core.labs.ground_truth.mixtures import PRESETS, shaped_mixture


def accuracy_table(n_points: int) -> None:
    table = accuracy(shaped_mixture(PRESETS["Four unequal blobs"]), n_points)
    rows = [
        [
            row.name,
            "strong (same Brownian path)" if row.stochastic else "RMS to exact ODE",
            row.theory,
            "n/a" if row.order is None else round(row.order, 2),
            *row.errors,
        ]
        for row in table.rows
    ]
    print_table(
        f"1. Error vs NFE budget, 2-D Gaussian mixture, exact denoiser, {n_points} points, Karras grid "
        f"({table.seconds:.1f} s)",
        ["sampler", "error", "order", "fitted", *(f"NFE {n}" for n in table.budgets)],
        rows,
    )


def small_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return (
        UNet2DModel(
            sample_size=32,
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            block_out_channels=(32, 64, 64),
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=8,
        )
        .eval()
        .requires_grad_(False)
    )


class TimedDenoiser:
    """Adds up the wall time spent inside the denoiser, so a run's overhead is measured in that run."""

    def __init__(self, denoiser: DiscreteTimeDenoiser) -> None:
        self.denoiser, self.inside, self.calls = denoiser, 0.0, 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.denoiser(x, sigma)
        self.inside += time.perf_counter() - start
        self.calls += 1
        return out


def overhead_table(unet: UNet2DModel, schedule: NoiseSchedule, batch: int, steps: int, repeats: int) -> None:
    denoiser = DiscreteTimeDenoiser(unet, schedule, "epsilon")
    sigmas = schedule.sampling_sigmas(steps, "trailing")
    x = torch.randn(batch, 3, 32, 32) * float(sigmas[0])
    rows = []
    for name, spec in SAMPLERS.items():
        ratios, loops = [], []
        for _ in range(repeats):
            timed = TimedDenoiser(denoiser)
            loop = seconds(lambda timed=timed, name=name: sample(name, timed, x, sigmas, generator=torch.Generator()))
            assert timed.calls == spec.nfe(steps)
            ratios.append(loop / timed.inside)
            loops.append(loop)
        per_call = statistics.median(loops) / spec.nfe(steps)
        rows.append([name, spec.nfe(steps), statistics.median(loops), per_call * 1e3, statistics.median(ratios)])
    params = sum(p.numel() for p in unet.parameters())
    print_table(
        f"2. Loop overhead, UNet2DModel {params / 1e6:.2f}M params, batch {batch}x3x32x32, {steps} steps, "
        f"CPU, {torch.get_num_threads()} threads; median of {repeats} runs",
        ["sampler", "NFE", "loop s", "loop ms / NFE", "loop / (NFE x denoiser call) [target <= 1.05]"],
        rows,
    )


class TimedModel(torch.nn.Module):
    """The UNet with a stopwatch, so each loop's own cost (its time outside the model) can be read off."""

    def __init__(self, unet: UNet2DModel) -> None:
        super().__init__()
        self.unet, self.inside = unet, 0.0

    def forward(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.unet(*args, **kwargs)
        self.inside += time.perf_counter() - start
        return out


def versus_diffusers_table(unet: UNet2DModel, batch: int, steps: int, repeats: int) -> None:
    config = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
    pairs = {
        "ddim": DDIMScheduler(**config, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"),
        "dpmpp_2m": DPMSolverMultistepScheduler(**config, algorithm_type="dpmsolver++", timestep_spacing="trailing"),
    }
    noise = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    timed = TimedModel(unet).eval()
    rows = []
    for name, scheduler in pairs.items():
        schedule = NoiseSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
        denoiser = DiscreteTimeDenoiser(timed, schedule, "epsilon")

        def ours(name=name, denoiser=denoiser, schedule=schedule):
            sigmas = schedule.sampling_sigmas(steps, "trailing")
            return sample(name, denoiser, noise * float((1 + sigmas[0] ** 2).sqrt()), sigmas)

        def theirs(scheduler=scheduler):
            return diffusers_loop(scheduler, timed, noise, steps)

        diff = float((ours() - theirs()).abs().max())
        totals: dict[str, list[float]] = {"ours": [], "theirs": []}
        outside: dict[str, list[float]] = {"ours": [], "theirs": []}
        for k in range(repeats):
            order = [("ours", ours), ("theirs", theirs)]
            for label, fn in order if k % 2 == 0 else order[::-1]:  # alternate who runs first
                timed.inside = 0.0
                total = seconds(fn)
                totals[label].append(total)
                outside[label].append((total - timed.inside) / steps * 1e3)
        ratios = [a / b for a, b in zip(totals["ours"], totals["theirs"], strict=True)]
        rows.append(
            [
                name,
                steps,
                statistics.median(totals["ours"]),
                statistics.median(totals["theirs"]),
                statistics.median(ratios),
                f"{statistics.median(outside['ours']):.3f} / {statistics.median(outside['theirs']):.3f}",
                diff,
            ]
        )
    print_table(
        f"3. Ours vs diffusers' scheduler loop: same UNet, batch {batch}, same timesteps and noise, {repeats} "
        "alternating pairs",
        [
            "sampler",
            "steps",
            "ours s",
            "diffusers s",
            "median ratio [target <= 1.00]",
            "loop's own ms per step, ours / diffusers",
            "max |diff|",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats (a smoke run)")
    parser.add_argument("--skip-accuracy", action="store_true", help="only the timing tables")
    args = parser.parse_args()
    torch.manual_seed(0)
    if not args.skip_accuracy:
        accuracy_table(n_points=2000 if args.quick else 10_000)
    unet = small_unet()
    schedule = NoiseSchedule.from_alphas_cumprod(DDIMScheduler().alphas_cumprod)
    overhead_table(unet, schedule, batch=4, steps=20, repeats=2 if args.quick else 5)
    versus_diffusers_table(unet, batch=4, steps=20, repeats=3 if args.quick else 9)


if __name__ == "__main__":
    main()
