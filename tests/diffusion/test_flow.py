"""Flow matching in the engine (core/diffusion/flow.py): the adapter around the exact velocity of a Gaussian
mixture is the exact mixture denoiser; Euler (DDIM) on the adapted model is Euler on the flow ODE in t; the
flow path as a schedule; training times; the trainer's flow loss."""

from __future__ import annotations

import itertools

import pytest
import torch

from core.diffusion.denoisers import FlowDenoiser, model_denoiser
from core.diffusion.flow import (
    TIME_SCALE,
    mixture_velocity,
    shift_t,
    sigma_of_t,
    t_of_sigma,
    training_times,
)
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import sample
from core.diffusion.schedules import make_schedule
from core.errors import BadInputError

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=torch.float64)
STDS = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


class ExactVelocity:
    """A 'network' whose output is the exact velocity of the mixture, called as the adapter calls a model."""

    def __call__(self, x_t: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return mixture_velocity(MEANS, STDS, WEIGHTS, x_t, time / TIME_SCALE)


def test_the_adapter_around_the_exact_velocity_is_the_exact_mixture_denoiser():
    flow = FlowDenoiser(ExactVelocity())
    exact = GaussianMixture(MEANS, STDS, WEIGHTS)
    g = torch.Generator().manual_seed(0)
    for sigma in (0.01, 0.3, 1.0, 4.0, 50.0):
        x = exact.sample(400, g)[0] + sigma * torch.randn(400, 2, generator=g, dtype=torch.float64)
        s = torch.full((400,), sigma, dtype=torch.float64)
        torch.testing.assert_close(flow(x, s), exact.denoise(x, s), rtol=1e-9, atol=1e-9)


def test_ddim_on_the_adapted_model_is_euler_on_the_flow_ode_in_t():
    flow, velocity = FlowDenoiser(ExactVelocity()), ExactVelocity()
    ts = torch.linspace(0.98, 0.02, 13, dtype=torch.float64)
    sigmas = torch.cat([sigma_of_t(ts), torch.zeros(1, dtype=torch.float64)])
    g = torch.Generator().manual_seed(1)
    y = torch.randn(300, 2, generator=g, dtype=torch.float64)  # x_t at t = 0.98
    ddim = sample("ddim", flow, y * (1 + sigmas[0]), sigmas)  # the VE state x = x_t / (1 - t)
    for t, t_next in itertools.pairwise(ts):
        y = y + (t_next - t) * velocity(y, torch.full((300,), float(t), dtype=torch.float64) * TIME_SCALE)
    last = y - ts[-1] * velocity(y, torch.full((300,), float(ts[-1]), dtype=torch.float64) * TIME_SCALE)  # to t = 0
    torch.testing.assert_close(ddim, last, rtol=1e-9, atol=1e-9)


def test_the_flow_path_as_a_schedule():
    plain, shifted = make_schedule("flow", 1000), make_schedule("flow", 1000, shift=3.0)
    assert plain.path == "flow" and plain.sampling_cap is None
    torch.testing.assert_close(t_of_sigma(plain.sigmas), torch.arange(1, 1001, dtype=torch.float64) / 1001)
    torch.testing.assert_close(t_of_sigma(shifted.sigmas), shift_t(t_of_sigma(plain.sigmas), 3.0))
    assert shifted.sigmas[500] > plain.sigmas[500]  # a shift spends the grid nearer the noise
    a, b = plain.signal_and_noise(torch.tensor([1.0]))
    assert float(a) == 0.5 and float(b) == 0.5  # sigma = 1 is t = 1/2: half data, half noise
    with pytest.raises(BadInputError, match="Only the flow path"):
        make_schedule("linear", 1000, shift=2.0)


def test_training_times_uniform_logit_normal_and_shifted():
    g = torch.Generator().manual_seed(0)
    uniform = training_times(10_000, g)
    assert float(uniform.min()) > 0 and float(uniform.max()) < 1 and abs(float(uniform.mean()) - 0.5) < 0.01
    logit = training_times(10_000, g, "logit_normal")
    assert abs(float(torch.logit(logit.double()).std()) - 1) < 0.05 and abs(float(logit.median()) - 0.5) < 0.02
    assert float(training_times(10_000, g, "uniform", shift=3.0).mean()) > 0.6
    with pytest.raises(BadInputError, match="time density"):
        training_times(4, g, "beta")


def test_model_denoiser_picks_the_adapter_by_the_target():
    net = ExactVelocity()
    assert isinstance(model_denoiser(net, make_schedule("flow", 1000), "flow_prediction"), FlowDenoiser)
    assert not isinstance(model_denoiser(lambda x, t: x, make_schedule("linear", 1000), "epsilon"), FlowDenoiser)


def test_the_trainer_learns_a_mixtures_velocity_with_the_flow_loss():
    from core.models.init import seeded
    from core.models.mlp import MLPConfig, build_mlp
    from core.training.diffusion import DiffusionTrainer, TrainConfig, tensor_batches

    exact = GaussianMixture(MEANS, STDS, WEIGHTS)
    data = exact.sample(4000, torch.Generator().manual_seed(0))[0].float()
    net = seeded(0, build_mlp, MLPConfig(dim=2, width=64, depth=2))
    config = TrainConfig(batch_size=256, lr=3e-3, prediction_type="flow_prediction", ema_decay=None)
    trainer = DiffusionTrainer(net, make_schedule("flow", 1000), config, tensor_batches(data))
    with torch.no_grad():
        first = float(trainer.flow_loss(data[:256], {}))
    trainer.train(800)
    assert trainer.metrics[-1]["loss"] < 0.6 * first
    flow = FlowDenoiser(trainer.model)
    x = exact.sample(500, torch.Generator().manual_seed(5))[0] + 1.0 * torch.randn(500, 2, dtype=torch.float64)
    s = torch.ones(500, dtype=torch.float64)
    learned, truth = flow(x.float(), s.float()).double(), exact.denoise(x, s)
    assert float((learned - truth).norm(dim=1).mean()) < 0.25 * float((x - truth).norm(dim=1).mean())
