"""What a model evaluation costs on this server: its floating-point operations, counted on the meta device
before anything real runs (`count_flops`), and the speed in FLOP/s it reaches here now.

A model's speed is followed per batch size (rounded down to a power of two: small batches reach fewer FLOP/s)
from its real evaluations, as an exponential average (`observe`, fed by `MeteredNetwork` while jobs run), so
an estimate follows the machine's load rather than one timing kept for the process's life; an average not fed
for FRESH_S seconds no longer counts. Where a model has none, the machine's speed stands in (`machine_rate`):
the same average over every model evaluated on the device, else a short reference measurement. The lock here
guards the tables only: it is never held while anything is evaluated.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from core.training.budget import check_deadline

FRESH_S = 120.0  # an average older than this no longer describes the machine
WEIGHT = 0.25  # of a new evaluation in the average

_lock = threading.Lock()
_rates: dict[Hashable, tuple[float, float]] = {}  # key -> (FLOP/s, when last fed, time.monotonic)
_warm: set[Hashable] = set()


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of the operations dispatched under it, by torch's own formulas (torch.utils.flop_counter),
    in this thread only: torch's FlopCounterMode also installs process-wide module hooks, which every other
    session's forwards would run through meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:  # a composite operation (linear, attention) counts through the ones it is made of
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(forward: Callable[[], object]) -> int:
    """FLOPs of `forward()`: 2 per multiply-add of its matrix products and convolutions (attention's included);
    elementwise operations, norms and activations are not counted. Run it on the meta device, where nothing is
    computed: a forward that would take minutes is counted in milliseconds."""
    with _FlopCount() as counter:
        forward()
    return int(counter.total)


def bucket(batch: int) -> int:
    """The batch size a speed is kept under: `batch` rounded down to a power of two."""
    return 1 << (max(1, int(batch)).bit_length() - 1)


def _kind(device: torch.device | str) -> str:
    """A device's kind ("cpu", "cuda", "mps"): a model loaded for "cuda" runs on "cuda:0"."""
    return torch.device(device).type


def _key(model: str, device: torch.device | str, batch: int) -> tuple[str, str, int]:
    return (model, _kind(device), bucket(batch))


def _feed(key: Hashable, rate: float, now: float) -> None:
    old = _rates.get(key)
    fresh = old is not None and now - old[1] <= FRESH_S
    _rates[key] = ((1 - WEIGHT) * old[0] + WEIGHT * rate if fresh else rate, now)


def forget() -> None:
    """Drop every speed followed so far (a benchmark starting afresh)."""
    with _lock:
        _rates.clear()
        _warm.clear()


def _fresh(key: Hashable) -> float | None:
    with _lock:
        found = _rates.get(key)
    return found[0] if found is not None and time.monotonic() - found[1] <= FRESH_S else None


def observe(model: str, device: torch.device | str, batch: int, flops: float, seconds: float) -> None:
    """Fold one evaluation of `batch` images (`flops` in all, `seconds` long) into the model's speed at that
    batch and the device's. A model's first evaluation at a batch size pays one-off costs (memory, kernels
    chosen) and is left out."""
    if not (seconds > 0 and flops > 0):
        return
    key, now = _key(model, device, batch), time.monotonic()
    with _lock:
        if key not in _warm:
            _warm.add(key)
            return
        _feed(key, flops / seconds, now)
        _feed(_kind(device), flops / seconds, now)


def model_rate(model: str, device: torch.device | str, batch: int) -> float | None:
    """The FLOP/s `model` reached lately at about `batch` images a call, or None."""
    return _fresh(_key(model, device, batch))


def machine_rate(device: torch.device | str) -> float:
    """The FLOP/s models reached lately on `device`, or (none lately) the median of a few 3x3 convolutions of
    64 channels at 32x32 (75 MFLOP each, some milliseconds in all), which then stands in."""
    rate = _fresh(_kind(device))
    if rate is None:
        rate = _reference_rate(torch.device(device))
        with _lock:
            _feed(_kind(device), rate, time.monotonic())
    return rate


def _reference_rate(device: torch.device) -> float:
    x = torch.full((1, 64, 32, 32), 0.5, device=device)  # a speed: the values do not matter
    weight = torch.full((64, 64, 3, 3), 0.01, device=device)
    flops = 2 * 64 * 64 * 9 * 32 * 32
    times = []
    with torch.inference_mode():
        for k in range(6):
            tic = time.perf_counter()
            torch.nn.functional.conv2d(x, weight, padding=1)
            _synchronize(device)
            if k:  # the first is a warm-up
                times.append(time.perf_counter() - tic)
    return flops / max(statistics.median(times), 1e-9)


def _synchronize(device: torch.device) -> None:
    """Wait for `device`'s queued work, so that a clock read after it times the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class MeteredNetwork:
    """A denoiser's network, called as the network itself (core/diffusion/denoisers.NetworkDenoiser), that checks
    the running job's deadline (core/training/budget.py) before each evaluation and reports each one's speed
    (`observe`). It changes nothing in the network it wraps, which may be shared between sessions."""

    def __init__(self, module: torch.nn.Module, name: str, flops_per_image: int) -> None:
        self.module, self.name, self.flops_per_image = module, name, flops_per_image

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.module.parameters()

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        tic = time.perf_counter()
        out = self.module(x, *args, **kwargs)
        _synchronize(x.device)
        observe(self.name, x.device, len(x), self.flops_per_image * len(x), time.perf_counter() - tic)
        return out
