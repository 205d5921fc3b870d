"""Log densities by the probability-flow ODE against the closed form or a density estimate
(core/labs/ground_truth/likelihood.py), and the statistics of the held-out tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.diffusion.likelihood import ErrorControl, ODESettings, log_density
from core.labs.ground_truth import likelihood, mixtures
from core.labs.latent import LatentTrainer, LatentTrainSettings
from core.labs.toy import ToyRun, ToySettings
from core.metrics.kde import kde_log_density


def test_the_exact_ode_log_density_matches_the_closed_form_with_an_estimate_that_bounds_its_error(mix):
    x, _ = mix.sample(200, torch.Generator().manual_seed(2))
    lo, hi = mixtures.view_box(mix)
    corners = mixtures.grid(lo.tolist(), hi.tolist(), 2)[2]  # the heat map's corners, log p about -60
    found, closed = likelihood.exact_log_density(mix, torch.cat([x, corners]))
    real = (found.value - closed).abs()
    assert float(closed.min()) < -50 and float(real.max()) < 1e-3 and not found.capped.any()
    assert bool((real <= found.error).all()) and float(found.error.max()) < likelihood.TRUSTED


def test_narrow_blobs_far_tails_are_within_1e_3_nats_where_rk4_on_128_steps_was_nats_off():
    narrow = mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"], spread=0.5)
    far = torch.tensor([[0.51, -1.72], [-5.71, -5.84]], dtype=torch.float64)  # between blobs, log p -64 and -331
    found, closed = likelihood.exact_log_density(narrow, far)
    assert closed.tolist() == pytest.approx([-64, -331], abs=0.6)
    real = (found.value - closed).abs()
    assert float(real.max()) < 1e-3 and bool((real <= found.error).all()) and not found.capped.any()
    grid_rk4 = ODESettings(**{**vars(likelihood.exact_settings(narrow)), "steps": 128})
    assert float((log_density(narrow.denoise, far, grid_rk4) - closed).abs().min()) > 1.0


def test_a_trained_toy_model_has_a_log_density_near_the_truth_and_an_untrained_one_does_not(mix):
    run = ToyRun(mixtures.mixture_cloud(mix, 2000, seed=0), ToySettings(seed=0))
    run.train(1500)
    held_out, _ = mix.sample(500, torch.Generator().manual_seed(3))
    nll_model = -float(likelihood.model_log_density(run, held_out.float(), steps=32).mean())
    nll_true = -float(mix.log_prob(held_out).mean())
    assert nll_true < nll_model < nll_true + 0.3  # no model beats the truth on held-out points (up to noise)
    untrained = ToyRun(mixtures.mixture_cloud(mix, 2000, seed=0), ToySettings(seed=0))
    untrained.train(1)
    assert -float(likelihood.model_log_density(untrained, held_out.float(), steps=32).mean()) > nll_model + 0.5


def test_held_out_statistics_are_the_mean_nll_its_standard_error_and_the_paired_gap():
    log_p = torch.tensor([-1.0, -2.0, -3.0, -6.0], dtype=torch.float64)
    truth = log_p + torch.tensor([0.5, 1.5, 0.5, 1.5], dtype=torch.float64)
    alone = likelihood.held_out_nll("model", log_p)
    assert alone.nll == 3.0 and alone.se == pytest.approx(float(log_p.std()) / 2) and alone.gap is None
    assert alone.bits_per_dim == pytest.approx(3.0 / (2 * math.log(2)))
    paired = likelihood.held_out_nll("model", log_p, truth)
    assert paired.gap == pytest.approx(1.0) and paired.gap_se == pytest.approx(
        float(torch.tensor([0.5, 1.5] * 2).std()) / 2
    )


def test_the_mixture_likelihood_maps_and_rows_with_a_tiny_exact_ode_gap(mix, monkeypatch):
    monkeypatch.setattr(likelihood, "HELD_OUT", 300)
    monkeypatch.setattr(likelihood, "LIKELIHOOD_GRID", 12)
    run = ToyRun(mixtures.mixture_cloud(mix, 256, seed=0), ToySettings(seed=0))
    run.train(300)
    steps_seen: list[tuple[int, int]] = []
    exact_seen: list[int] = []
    maps = likelihood.mixture_likelihood(
        mix, run, lambda k, n: steps_seen.append((k, n)), lambda k, n: exact_seen.append(k * 1000 // n)
    )
    assert exact_seen == sorted(exact_seen) and exact_seen[-1] == 1000  # the exact ODE's share of its way
    assert steps_seen[-1] == (likelihood.MODEL_ODE_STEPS, likelihood.MODEL_ODE_STEPS)
    assert [p.title for p in maps.panels][:2] == ["Closed form", "ODE, exact denoiser"] and len(maps.panels) == 3
    assert all(p.z.shape == (12, 12) for p in maps.panels) and len(maps.xs) == len(maps.ys) == 12
    closed_panel, exact_panel, model_panel = maps.panels
    assert closed_panel.error is None and model_panel.error is None  # only the adaptive ODE estimates its error
    assert exact_panel.error is not None and exact_panel.error.shape == (12, 12) and not exact_panel.marked.any()
    assert maps.marked == maps.capped == 0 and maps.points == 12 * 12 + 300
    assert maps.worst_error < likelihood.TRUSTED and maps.unmarked_gap < 1e-3
    truth, ode, model = maps.nlls
    held, _ = mix.sample(300, torch.Generator().manual_seed(likelihood.HELD_OUT_SEED))
    assert truth.nll == pytest.approx(-float(mix.log_prob(held, 0.002).mean())) and truth.gap is None
    assert abs(ode.gap) < 1e-4 and ode.gap_se < 1e-4 and abs(ode.nll - truth.nll) < 1e-4
    assert maps.ode_gap < 1e-3 and maps.grid_gap >= 0
    assert model.gap is not None and model.nll > truth.nll - 3 * model.se  # a model does not beat the truth
    assert "256 training points, 300 steps" in model.what


def test_the_latent_likelihood_sets_a_model_beside_a_density_estimate(monkeypatch):
    monkeypatch.setattr(likelihood, "LATENT_GRID", 6)
    rng = np.random.default_rng(0)
    train = rng.normal(size=(600, 2))
    test = rng.normal(size=(80, 2))
    trainer = LatentTrainer(train, np.arange(600) % 10, LatentTrainSettings(steps=200, width=32, depth=2), "tiny")
    trainer.train()
    seen: list[int] = []
    maps = likelihood.latent_likelihood(trainer.model(), train, test, lambda k, n: seen.append(k))
    assert seen and seen[-1] == likelihood.MODEL_ODE_STEPS
    assert [p.title for p in maps.panels] == ["KDE of the training latents", "ODE, tiny"]
    assert all(p.error is None for p in maps.panels) and maps.marked == 0
    kde, learned = maps.nlls
    assert kde.nll == pytest.approx(-float(kde_log_density(train, test).mean()))
    assert kde.what.startswith("KDE of 600 training latents") and learned.what.startswith("tiny")
    standard = 1 + math.log(2 * math.pi)  # the NLL of N(0, I) in 2-D, the law of every point here
    assert abs(kde.nll - standard) < 0.3 and abs(learned.nll - standard) < 1.0
    assert math.isnan(maps.ode_gap) and math.isnan(maps.grid_gap)


def test_points_out_of_calls_are_counted_and_marked_on_the_map(monkeypatch):
    narrow = mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"], spread=0.25)
    monkeypatch.setattr(likelihood, "HELD_OUT", 50)
    monkeypatch.setattr(likelihood, "LIKELIHOOD_GRID", 8)
    monkeypatch.setattr(likelihood, "EXACT_CONTROL", ErrorControl(max_evals=400))  # too few for the far tails
    run = ToyRun(mixtures.mixture_cloud(narrow, 64, seed=0), ToySettings(seed=0))
    run.train(50)
    maps = likelihood.mixture_likelihood(narrow, run)
    exact = maps.panels[1]
    assert exact.capped is not None and exact.capped.any() and maps.capped >= int(exact.capped.sum())
    assert exact.marked is not None and bool(exact.marked[exact.capped].all())  # every capped cell is marked
    assert maps.marked >= maps.capped and maps.worst_error > likelihood.TRUSTED
    # What is not marked is within 1e-3 nats of the closed form.
    closed = maps.panels[0].z
    assert float(np.abs(exact.z - closed)[~exact.marked].max()) < 1e-3 and maps.unmarked_gap < 1e-3
