"""Same-seed comparisons (core/labs/compare.py) on an exact mixture denoiser: the plan is checked before any
work, and cells come one at a time, so a Stop keeps the finished ones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from core.diffusion.denoisers import GaussianMixtureDenoiser
from core.diffusion.schedules import NoiseSchedule, make_schedule
from core.errors import BadInputError
from core.labs.compare import compare_cells
from core.labs.pixel import SamplerSettings

CPU = torch.device("cpu")


@dataclass
class MixtureImages:
    """An ImageModel whose 'images' are 1 x 2 x 2 draws of an exact Gaussian mixture; counts its calls."""

    schedule: NoiseSchedule
    calls: int = 0
    name: str = "mixture"
    title: str = "A mixture"
    data: str | None = None
    device: torch.device = CPU
    sample_shape: tuple[int, ...] = (1, 2, 2)
    num_classes: int = 0
    null_label: int | None = None

    def __post_init__(self) -> None:
        self._mix = GaussianMixtureDenoiser(torch.tensor([[-0.5] * 4, [0.5] * 4]), 0.1)

    def denoiser(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self._mix(x, sigma)


def test_cells_come_one_at_a_time_and_the_plan_is_checked_before_any_work():
    model = MixtureImages(make_schedule("linear", 100))
    base = SamplerSettings(batch=3, clip=False)
    cells = compare_cells([model], ["euler", "heun"], [4, 8], base)
    first = next(cells)
    assert (first.sampler, first.steps, first.nfe) == ("euler", 4, 4) and model.calls == 4  # nothing more yet
    rest = list(cells)
    assert [(c.sampler, c.steps) for c in rest] == [("euler", 8), ("heun", 4), ("heun", 8)]
    assert model.calls == 4 + 8 + 7 + 15 and first.images.shape == (3, 1, 2, 2)
    for steps, message in (([4, 500], "allows at most 100 steps"), ([], "at least one")):
        model.calls = 0
        with pytest.raises(BadInputError, match=message):
            next(compare_cells([model], ["euler"], steps, base))
        assert model.calls == 0
