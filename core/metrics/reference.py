"""What a distance between a model's samples and the data reads when nothing is wrong: the same distance between
fresh draws of the true data, at the very sample sizes the model's value used, repeated with new draws.

One such draw is not a floor: at a few thousand points it varies by a factor of two from draw to draw, so a good
model's value often lies below a single draw. The band (the range of the repeats) shows that spread: a model that
samples the data law itself lands inside it REPEATS - 1 times in REPEATS + 1, and below it once, so a value
inside it is as close to the data as data itself at that sample size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

REPEATS = 10


@dataclass(frozen=True, kw_only=True)
class ReferenceBand:
    """One distance between fresh data sets of `sizes` (the model's samples, its reference), once per repeat;
    the band runs from the smallest value to the largest."""

    what: str  # what was compared, for a label: "two fresh data sets"
    sizes: tuple[int, int]
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def span(self, digits: int = 3) -> str:
        """'0.033–0.061': the band's ends."""
        return f"{self.low:.{digits}f}–{self.high:.{digits}f}"

    def describe(self) -> str:
        """'two fresh data sets (2,000 each), range of 10 draws' (or '(1,000 vs 10,000)')."""
        n, m = self.sizes
        size = f"{n:,} each" if n == m else f"{n:,} vs {m:,}"
        return f"{self.what} ({size}), range of {len(self.values)} draws"


def reference_bands(
    draw: Callable[[int, torch.Generator], Any],
    sizes: tuple[int, int],
    distances: Mapping[str, Callable[[Any, Any], float]],
    *,
    repeats: int = REPEATS,
    seed: int = 0,
    reference: Any = None,
    what: str = "two fresh data sets",
) -> dict[str, ReferenceBand]:
    """Each distance (by name) between `draw(sizes[0], g)` and `draw(sizes[1], g)`, `repeats` times with one
    generator seeded by `seed`. With a fixed `reference` (of sizes[1] rows: the set a model's value is measured
    against) only the first set is drawn anew each time. `draw(m, g)` returns m rows of fresh data."""
    n, m = sizes
    if reference is not None and len(reference) != m:
        raise ValueError(f"The reference has {len(reference)} rows, not {m}.")
    g = torch.Generator().manual_seed(seed)
    values: dict[str, list[float]] = {name: [] for name in distances}
    for _ in range(repeats):
        a = draw(n, g)
        b = reference if reference is not None else draw(m, g)
        if len(a) != n or len(b) != m:
            raise ValueError(f"Drew {len(a)} and {len(b)} rows for sizes {n} and {m}.")
        for name, distance in distances.items():
            values[name].append(float(distance(a, b)))
    return {name: ReferenceBand(what=what, sizes=(n, m), values=tuple(v)) for name, v in values.items()}
