"""Post-hoc EMA (core/training/posthoc_ema.py): the power-function EMA against its closed-form profile, the
profiles' inner products against numerical integrals, EDM2's published exponents, and a reconstruction against an
EMA tracked directly at that length, on a weight path and on a real training."""

import math

import numpy as np
import pytest
import torch

from core.diffusion.schedules import make_schedule
from core.errors import BadInputError
from core.models.mlp import MLPConfig, build_mlp
from core.training.diffusion import DiffusionTrainer, TrainConfig, tensor_batches
from core.training.posthoc_ema import (
    MAX_SIGMA_REL,
    PowerStreams,
    coefficients,
    combine,
    gamma_of,
    profile_products,
    sigma_rel_of,
)


def test_lengths_and_exponents_match_edm2s_published_pairs():
    # Karras et al. 2024, section 3.1: sigma_rel 0.05 and 0.10 are gamma 16.97 and 6.94.
    assert gamma_of(0.05) == pytest.approx(16.97, abs=0.01)
    assert gamma_of(0.10) == pytest.approx(6.94, abs=0.01)
    assert sigma_rel_of(0.0) == pytest.approx(MAX_SIGMA_REL) == pytest.approx(math.sqrt(1 / 12))
    for r in (0.001, 0.03, 0.2, MAX_SIGMA_REL):
        assert sigma_rel_of(gamma_of(r)) == pytest.approx(r, rel=1e-9)
    for bad in (0.0, -0.1, 0.3, math.nan):
        with pytest.raises(BadInputError, match="EMA length"):
            gamma_of(bad)


def test_the_ema_weighs_each_step_by_its_profiles_integral():
    """With theta_t the t-th basis vector, the EMA at T reads off each step's weight, which must be the integral
    of (gamma + 1) s^gamma / T^(gamma + 1) over (t - 1, t]; its standard deviation over steps is sigma_rel T."""
    T = 400
    weight = torch.nn.Parameter(torch.zeros(T, dtype=torch.float64))
    module = torch.nn.Module()
    module.weight = weight
    streams = PowerStreams(module, [0.05, 0.2])
    for t in range(1, T + 1):
        with torch.no_grad():
            weight.zero_()
            weight[t - 1] = 1.0
        streams.update(module, t)
    tau = np.arange(1, T + 1, dtype=np.float64)
    for k, gamma in enumerate(streams.gammas):
        got = streams.streams[k][0].numpy()
        expected = (tau ** (gamma + 1) - (tau - 1) ** (gamma + 1)) / T ** (gamma + 1)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
        centres = tau - 0.5
        mean = (got * centres).sum()
        spread = math.sqrt((got * (centres - mean) ** 2).sum() + 1 / 12)  # + the bins' own width
        assert spread / T == pytest.approx(streams.sigma_rels[k], rel=0.01)


def test_profile_products_match_numerical_integrals():
    s = np.linspace(0, 1000, 2_000_001)
    for t_a, g_a, t_b, g_b in ((1000, 6.94, 400, 16.97), (250, 3.0, 250, 0.5), (700, 0.0, 900, 6.94)):
        p_a = np.where(s <= t_a, (g_a + 1) * s**g_a / t_a ** (g_a + 1), 0.0)
        p_b = np.where(s <= t_b, (g_b + 1) * s**g_b / t_b ** (g_b + 1), 0.0)
        assert profile_products(t_a, g_a, t_b, g_b) == pytest.approx(np.trapezoid(p_a * p_b, s), rel=1e-4)
    assert np.isfinite(profile_products(10**6, 400.0, 10**6, 400.0))  # no overflow at long runs and short EMAs


def _snapshots_of_a_path(T: int, every: int, lengths: list[float]):
    """A 2,000-number weight path (a drifting random walk), two streams snapshotted every `every` steps, and
    EMAs of `lengths` tracked directly along the way."""
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(40, 50)
    streams, direct = PowerStreams(layer, [0.05, 0.10]), PowerStreams(layer, lengths)
    snaps, states = [], []
    for t in range(1, T + 1):
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g) + 0.002 * math.sin(t / 150))
        streams.update(layer, t)
        direct.update(layer, t)
        if t % every == 0:
            for k, gamma in enumerate(streams.gammas):
                snaps.append((t, gamma))
                states.append(streams.state_of(k, layer))
    return snaps, states, [direct.state_of(k, layer) for k in range(len(lengths))]


def test_a_rebuilt_ema_matches_one_tracked_directly_at_that_length():
    lengths = [0.03, 0.07, 0.15]
    snaps, states, direct = _snapshots_of_a_path(2000, 100, lengths)
    nearest = states[-2]  # the 0.05 stream at the end
    for length, tracked in zip(lengths, direct, strict=True):
        fit = coefficients(snaps, 2000, length)
        rebuilt = combine(states, fit.coefficients)
        for name, want in tracked.items():
            error = float((rebuilt[name] - want).norm() / want.norm())
            as_far = float((nearest[name] - want).norm() / want.norm())
            assert error < 0.02 * as_far, (length, name, error, as_far)
        assert fit.profile_error < 0.05
    # A stream's own length at its last snapshot is that snapshot.
    fit = coefficients(snaps, 2000, 0.10)
    assert fit.profile_error < 1e-6 and fit.coefficients[-1] == pytest.approx(1.0, abs=1e-6)


def test_only_snapshots_up_to_the_step_are_used_and_odd_requests_are_refused():
    snaps = [(100, 6.94), (200, 6.94), (300, 6.94)]
    assert coefficients(snaps, 200, 0.1).coefficients[2] == 0
    with pytest.raises(BadInputError, match="No post-hoc EMA snapshot"):
        coefficients(snaps, 50, 0.1)
    with pytest.raises(BadInputError):
        combine([], [])


def test_a_training_keeps_streams_that_rebuild_a_directly_tracked_ema():
    """The trainer's own streams (an MLP on a toy set, flat parameter buffer), snapshotted every 25 steps, rebuild
    an EMA of length 0.07 that a separate stream tracked directly through the same training."""
    model, schedule = (
        build_mlp(MLPConfig(dim=2, width=32, depth=2, num_steps=100), seed=0),
        make_schedule("linear", 100),
    )
    data = torch.randn(512, 2, generator=torch.Generator().manual_seed(1))
    config = TrainConfig(batch_size=64, lr=3e-3, warmup_steps=5, posthoc_ema=[0.05, 0.10], log_every=25)
    trainer = DiffusionTrainer(model, schedule, config, tensor_batches(data))
    assert trainer.config.posthoc_ema == (0.05, 0.10) and trainer.posthoc is not None
    direct = PowerStreams(model, [0.07])
    snaps, states = [], []

    def each_step(tr: DiffusionTrainer) -> None:
        direct.update(tr.model, tr.step)
        if tr.step % 25 == 0:
            for k, gamma in enumerate(tr.posthoc.gammas):
                snaps.append((tr.step, gamma))
                states.append(tr.posthoc.state_of(k, tr.sampling_model))

    trainer.train(300, each_step, every=1)
    fit = coefficients(snaps, 300, 0.07)
    rebuilt, tracked = combine(states, fit.coefficients), direct.state_of(0, model)
    raw = model.state_dict()
    for name, want in tracked.items():
        # within a twentieth of the raw weights' distance (0 for a parameter training does not move)
        assert float((rebuilt[name] - want).norm()) <= 0.05 * float((raw[name] - want).norm()) + 1e-6, name
    with pytest.raises(BadInputError, match="EMA length"):
        TrainConfig(posthoc_ema=[0.5])
