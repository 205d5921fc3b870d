"""Sampling speed on a GPU (or the CPU): DDPM's CIFAR-10 UNet, DPM-Solver++(2M), 20 steps.

    python -m bench.gpu [--device cuda|mps|cpu] [--batch N] [--steps N] [--repeats N] [--compile]

The UNet is google/ddpm-cifar10-32's (diffusers UNet2DModel, 35.7M parameters; its unet/config.json is
copied below) with random weights: speed does not depend on the weights. Rows, all on the same noise:

- ours fp32: core.samplers.sample("dpmpp_2m") over core.denoisers.DiscreteTimeDenoiser;
- ours bf16 + channels_last: the same, the UNet in channels_last memory format under bf16 autocast;
- ours compiled (--compile): the bf16 + channels_last UNet through torch.compile (first call compiles);
- diffusers fp32: DPMSolverMultistepScheduler's own loop (dpmsolver++, order 2, trailing timesteps).

images/s = batch / median wall time of one whole sampling run (after a warm-up run). TFLOP/s = the FLOPs of
one UNet forward at that batch x the UNet calls per run / that time; the FLOPs are counted once with
torch.utils.flop_counter.FlopCounterMode on the meta device (convolutions, matrix products and attention;
norms, activations and the sampler's own arithmetic are not counted, as usual). "rel. diff" is each row's
distance to the fp32 row's images over their norm: diffusers' loop agrees to float rounding; bf16 rows
differ more than a trained model's would, as random weights amplify rounding.
"""

from __future__ import annotations

import argparse
import copy
import math

import torch
from diffusers import DPMSolverMultistepScheduler, UNet2DModel
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.common import diffusers_loop, interleaved_medians, print_table, seconds
from core.device import describe_device, pick_device
from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.samplers import SAMPLERS, sample
from core.diffusion.schedules import NoiseSchedule

# google/ddpm-cifar10-32, unet/config.json (Ho et al. 2020's CIFAR-10 model as converted to diffusers).
DDPM_CIFAR10_UNET = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": (128, 256, 256, 256),
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": None,
    "act_fn": "silu",
    "center_input_sample": False,
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-6,
    "norm_num_groups": 32,
    "time_embedding_type": "positional",
}
# Its scheduler_config.json: DDPM's linear betas.
DDPM_BETAS = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
SAMPLER = "dpmpp_2m"


class Autocast(nn.Module):
    """The UNet in channels_last memory format under autocast; returns the output tensor in float32."""

    def __init__(self, unet: nn.Module, device_type: str, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.unet = unet.to(memory_format=torch.channels_last)
        self.device_type, self.dtype = device_type, dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.unet(x.contiguous(memory_format=torch.channels_last), t).sample
        return out.float()


def build_unet(device: torch.device, seed: int = 0) -> UNet2DModel:
    torch.manual_seed(seed)
    return UNet2DModel(**DDPM_CIFAR10_UNET).to(device).eval().requires_grad_(False)


def forward_flops(batch: int) -> int:
    """FLOPs of one UNet forward at `batch`, counted on the meta device (no memory, no time)."""
    with torch.device("meta"):
        unet = UNet2DModel(**DDPM_CIFAR10_UNET).eval()
        x, t = torch.zeros(batch, 3, 32, 32), torch.full((batch,), 500.0)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(x, t)
    return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def ours(model: nn.Module, schedule: NoiseSchedule, noise: torch.Tensor, steps: int) -> torch.Tensor:
    denoiser = DiscreteTimeDenoiser(model, schedule, "epsilon")
    sigmas = schedule.sampling_sigmas(steps, "trailing")
    return sample(SAMPLER, denoiser, noise * math.sqrt(1 + float(sigmas[0]) ** 2), sigmas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--batch", type=int, default=None, help="images per run (default 256 on a GPU, 8 on CPU)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row (default 5, or 2 on CPU)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (compiling takes minutes)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast row")
    args = parser.parse_args()
    device = pick_device(args.device)
    cpu = device.type == "cpu"
    batch = args.batch or (8 if cpu else 256)
    repeats = args.repeats or (2 if cpu else 5)
    steps = args.steps
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # all rows alike: the fastest convolution algorithm per shape

    unet = build_unet(device)
    params = sum(p.numel() for p in unet.parameters())
    scheduler = DPMSolverMultistepScheduler(**DDPM_BETAS, algorithm_type="dpmsolver++", timestep_spacing="trailing")
    schedule = NoiseSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
    noise = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    nfe = SAMPLERS[SAMPLER].nfe(steps)
    flops_per_run = forward_flops(batch) * nfe

    rows: dict[str, tuple[str, object]] = {"ours fp32": ("fp32", unet)}
    if not args.no_bf16:
        rows["ours bf16 + channels_last"] = ("bf16 autocast", Autocast(copy.deepcopy(unet), device.type))
    if args.compile:
        compiled = torch.compile(Autocast(copy.deepcopy(unet), device.type))
        rows["ours bf16 + channels_last, torch.compile"] = ("bf16 autocast", compiled)
    rows["diffusers fp32 (DPMSolverMultistepScheduler)"] = ("fp32", None)

    images: dict[str, torch.Tensor] = {}

    def timed_run(name: str, model: nn.Module | None):
        """One whole sampling run of a row, finished on the device; keeps the row's images."""

        def run() -> None:
            if model is None:
                images[name] = diffusers_loop(scheduler, unet, noise, steps)
            else:
                images[name] = ours(model, schedule, noise, steps)
            synchronize(device)

        return run

    runs = {name: timed_run(name, model) for name, (_, model) in rows.items()}
    # Warm-up (and compilation): one whole run per row (a shorter one leaves the first timed run slow on the CPU).
    warmup_seconds = {name: seconds(run) for name, run in runs.items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    medians = dict(zip(runs, interleaved_medians(list(runs.values()), repeats, warmup=0), strict=True))
    reference = images["ours fp32"].float()

    table = []
    for name, (precision, _) in rows.items():
        run_s = medians[name]
        diff = float((images[name].float() - reference).norm() / reference.norm())
        table.append(
            [
                name,
                precision,
                nfe,
                run_s,
                batch / run_s,
                flops_per_run / run_s / 1e12,
                run_s / nfe * 1e3,
                diff,
                warmup_seconds[name],
            ]
        )
    info = describe_device(device)
    peak = f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.type == "cuda" else ""
    tf32 = (
        f", TF32 matmul {torch.backends.cuda.matmul.allow_tf32} / cuDNN {torch.backends.cudnn.allow_tf32}"
        if device.type == "cuda"
        else f", {torch.get_num_threads()} threads"
    )
    print_table(
        f"Sampling speed: ddpm-cifar10-32 UNet ({params / 1e6:.1f}M params, random weights), {SAMPLER} {steps} "
        f"steps, batch {batch}x3x32x32, {info.kind.upper()} ({info.name}), torch {info.torch_version}{tf32}{peak}; "
        f"{forward_flops(1) / 1e9:.2f} GFLOP per image per UNet call; median of {repeats} run(s)",
        [
            "variant",
            "precision",
            "UNet calls",
            "s / run",
            "images/s",
            "TFLOP/s",
            "ms / step",
            "rel. diff vs ours fp32",
            "warm-up s",
        ],
        table,
    )


if __name__ == "__main__":
    main()
