"""The trajectory probe (core/labs/ground_truth/probe.py): each sampler's path from one point beside the exact
ODE path."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs.ground_truth import probe


def test_the_probe_starts_where_asked_and_a_fine_sampler_follows_the_exact_path(mix):
    found = probe.probe(mix, (1.0, -1.0), 5.0, ["heun", "edm"], steps=40, seed=0)
    paths, exact = found.paths, found.exact
    assert found.sigmas[0] == pytest.approx(5.0) and found.sigmas[-1] == 0 and len(found.sigmas) == 41
    assert paths[1].sigmas[1] > found.sigmas[1]  # EDM records its raised level; the frames keep the grid
    for path in (paths[0], exact):
        assert path.points[0].tolist() == [1.0, -1.0] and path.sigmas[0] == pytest.approx(5.0)
        assert path.sigmas[-1] == 0 and len(path.points) == len(path.sigmas)
    assert len(paths[0].points) == 41 and paths[0].nfe == SAMPLERS["heun"].nfe(40)
    assert abs(paths[0].points[-1] - exact.points[-1]).max() < 1e-2
    with pytest.raises(BadInputError):
        probe.probe(mix, (0.0, 0.0), 500.0, ["heun"], 10)


def test_a_start_from_noise_is_a_seeded_draw_of_the_blurred_mixture(mix):
    assert probe.start_from_noise(mix, 2.0, 3) == probe.start_from_noise(mix, 2.0, 3)
    assert probe.start_from_noise(mix, 2.0, 3) != probe.start_from_noise(mix, 2.0, 4)
    starts = torch.tensor([probe.start_from_noise(mix, 40.0, seed) for seed in range(300)])
    assert 30 < float(starts.std(0).mean()) < 50  # the noise at sigma 40 swamps the mixture's own spread
