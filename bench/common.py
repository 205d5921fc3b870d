"""Timing and table printing shared by the benchmarks, and their threads: a bench run as `python -m bench.NAME`
runs torch on the threads policy's "script" threads (all cores, or ATLAS_THREADS; core/device.threads_for),
set here when the program is a bench, so a test that imports a bench keeps its own setting."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence

import torch

from core.device import use_threads


def running_a_bench() -> bool:
    """Whether this process's program is one of the benches (`python -m bench.NAME`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name.startswith("bench.")


if running_a_bench():
    use_threads("script")


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(fns: Sequence[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Median wall time of each function, running them in turn so drifts in machine load hit all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            times[k].append(seconds(fn))
    return [statistics.median(t) for t in times]


def diffusers_loop(scheduler, unet: torch.nn.Module, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """The loop diffusers' pipelines run: set the timesteps, then scale, predict and step (as our samplers, under
    inference mode)."""
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    with torch.inference_mode():
        for t in scheduler.timesteps:
            eps = unet(scheduler.scale_model_input(x, t), t).sample
            x = scheduler.step(eps, t, x).prev_sample
    return x


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain Markdown table, readable in a terminal and pasteable into notes."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e4:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)
