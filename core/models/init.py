"""Building a network whose initial weights are fixed by a seed, without touching the process's RNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


def seeded(seed: int, factory: Callable[..., M], *args: Any, **kwargs: Any) -> M:
    """factory(*args, **kwargs), built while torch's default CPU generator is seeded with `seed`.

    Layers draw their initial weights from that global generator; the server's sessions share it, so it is
    forked and restored around the build: the weights depend on the seed alone, and nobody else's draws move.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        return factory(*args, **kwargs)
