"""Memorisation (core/labs/ground_truth/memorisation.py): the optimal denoiser of a finite training set, how
near samples land to it, and the study over training-set size and training time."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import BadInputError
from core.labs.ground_truth import memorisation, mixtures
from core.labs.toy import ToyRun, ToySettings, run_sampler


def test_the_optimal_denoiser_of_a_finite_set_copies_its_points_and_fresh_draws_do_not(mix):
    train = mixtures.mixture_cloud(mix, 32, seed=0).points
    copies = memorisation.nearness(memorisation.optimal_samples(train, 500, seed=1), train)
    assert copies.copied == 1.0 and copies.median < 1e-3
    fresh = memorisation.nearness(mix.sample(2000, torch.Generator().manual_seed(4))[0], train)
    assert 0.03 < fresh.copied < 0.3 and fresh.median > 0.05
    with pytest.raises(BadInputError):
        memorisation.empirical_denoiser(torch.zeros(0, 2))


def test_a_toy_model_on_a_tiny_set_moves_toward_copying_as_it_trains(mix):
    cloud = mixtures.mixture_cloud(mix, 16, seed=0)
    run = ToyRun(cloud, ToySettings(seed=0))
    shares = []
    for _ in range(3):
        run.train(1000)
        shares.append(memorisation.nearness(run_sampler(run, "heun", 40, 800).samples, cloud.points).copied)
    assert shares[-1] > shares[0]


def test_fresh_copy_share_in_two_dimensions_is_about_a_ninth():
    # For a Poisson-like cloud in 2-D, (d1 / d2)^2 is uniform, so P(d1 <= d2 / 3) = 1 / 9.
    g = torch.Generator().manual_seed(0)
    train = torch.rand(4000, 2, generator=g, dtype=torch.float64)
    probe = 0.25 + 0.5 * torch.rand(4000, 2, generator=g, dtype=torch.float64)
    assert memorisation.nearness(probe, train).copied == pytest.approx(1 / 9, abs=0.02)
    assert math.isclose(memorisation.COPY_RATIO, 1 / 3)


def test_sample_nearness_measures_three_sources_against_the_models_training_set(mix, monkeypatch):
    monkeypatch.setattr(memorisation, "NEARNESS_SAMPLES", 300)
    run = ToyRun(mixtures.mixture_cloud(mix, 32, seed=0), ToySettings(seed=0), "m1")
    run.train(50)
    curves = memorisation.sample_nearness(mix, run)
    assert list(curves) == ["Optimal denoiser of the training set", "Model m1", "Fresh draws from the mixture"]
    optimal, model, fresh = curves.values()
    assert all(len(c.nearest) == 300 for c in curves.values())
    assert optimal.copied == 1.0 and fresh.copied < 0.3 and model.copied < 1.0  # 50 steps: far from copying


def test_the_study_measures_every_size_at_every_checkpoint_and_reports_each(mix):
    seen: list[int] = []
    study = memorisation.run_study(mix, [32, 16], steps=40, checkpoints=2, on_row=lambda s: seen.append(len(s.rows)))
    assert seen == [0, 1, 2, 3, 4] and study.planned == 4
    assert [(r["points"], r["step"]) for r in study.rows] == [(16, 20), (16, 40), (32, 20), (32, 40)]
    assert all(0.0 <= r["copied"] <= 1.0 for r in study.rows)
    fresh, _ = mix.sample(memorisation.BASELINE_DRAWS, torch.Generator().manual_seed(9))
    biggest = mixtures.mixture_cloud(mix, 32, seed=0).points
    assert study.baseline == memorisation.nearness(fresh, biggest).copied
    assert memorisation.study_seconds([16, 32], 1000) == pytest.approx(2 * mixtures.model_seconds(1000))
    with pytest.raises(BadInputError):
        memorisation.run_study(mix, [], steps=40, checkpoints=2)
    assert memorisation.plan_study([32, 16, 64], 3) == 9  # what a page plans before the study starts
    for sizes, checkpoints in (([], 2), ([16], 0)):
        with pytest.raises(BadInputError):
            memorisation.plan_study(sizes, checkpoints)
