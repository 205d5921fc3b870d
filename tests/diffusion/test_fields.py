"""Drift fields (probability-flow velocity and score) against their definitions and the exact mixture."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.fields import drift_field, mesh
from core.diffusion.mixture import GaussianMixture
from core.diffusion.schedules import make_schedule
from core.errors import BadInputError
from tests.helpers import gaussian_cloud


def _mixture() -> GaussianMixture:
    return GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.3, 0.4]))


def test_grid_has_square_cells_over_the_padded_box():
    axes, pts = mesh(torch.tensor([0.0, 0.0]), torch.tensor([4.0, 1.0]), 21, pad=0.0)
    assert [len(a) for a in axes] == [21, 6] and pts.shape == (21 * 6, 2)
    assert float(axes[0][1] - axes[0][0]) == pytest.approx(float(axes[1][1] - axes[1][0]), rel=0.05)
    with pytest.raises(BadInputError):
        mesh(torch.zeros(3), torch.ones(3), 100)  # 1e6 points


def test_velocity_is_the_probability_flow_ode_run_backwards():
    mix, sch = _mixture(), make_schedule("linear", 1000)
    y = gaussian_cloud(300, 2)
    u, h = 0.3, 1e-5
    field = drift_field(mix.denoise, sch, y, torch.tensor([u]))
    # One tiny Euler step of the exact VE ODE dx/dsigma = (x - D) / sigma from u down to u - h, seen in VP.
    s, s2 = (float(sch.t_to_sigma(v * 999)) for v in (u, u - h))
    x = y * (1 + s**2) ** 0.5
    x2 = x + (s2 - s) * (x - mix.denoise(x, torch.full((300,), s, dtype=torch.float64))) / s
    numeric = (x2 / (1 + s2**2) ** 0.5 - y) / h
    assert torch.allclose(field.velocity[0], numeric, atol=2e-3 * float(numeric.abs().max()))


def test_score_is_the_gradient_of_the_noisy_log_density():
    mix, sch = _mixture(), make_schedule("cosine", 500)
    y = gaussian_cloud(100, 3).requires_grad_(True)
    u = 0.4
    s = float(sch.t_to_sigma(u * 499))
    # p_u(y) = p_sigma(y sqrt(1 + s^2)) (1 + s^2)^(D/2), so grad_y log p_u = sqrt(1 + s^2) grad_x log p_sigma.
    mix.log_prob(y * (1 + s**2) ** 0.5, s).sum().backward()
    field = drift_field(mix.denoise, sch, y.detach(), torch.tensor([u]))
    assert torch.allclose(field.score[0], y.grad, atol=1e-6)


def test_a_model_that_predicts_the_exact_noise_gives_the_exact_field():
    mix, sch = _mixture(), make_schedule("linear", 1000)

    def exact_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = sch.t_to_sigma(t.double())
        x = x_t.double() * (1 + sigma[:, None] ** 2).sqrt()
        return ((x - mix.denoise(x, sigma)) / sigma[:, None]).float()

    learned = DiscreteTimeDenoiser(exact_eps, sch, "epsilon")
    _, pts = mesh(torch.tensor([-2.0, -2.0]), torch.tensor([2.0, 2.0]), 8)
    times = torch.tensor([1.0, 0.5, 0.05])
    a, b = drift_field(learned, sch, pts, times), drift_field(mix.denoise, sch, pts, times)
    assert torch.allclose(a.velocity, b.velocity, rtol=1e-3, atol=1e-3 * float(b.velocity.abs().max()))
    diff = a - b
    assert float(diff.score.abs().max()) < 1e-2 * float(b.score.abs().max())


def test_fields_rescale_to_original_units_and_check_their_times():
    mix, sch = _mixture(), make_schedule("linear", 100)
    f = drift_field(mix.denoise, sch, gaussian_cloud(10, 0), torch.tensor([0.5]))
    g = f.rescaled(torch.tensor([10.0, 0.0], dtype=torch.float64), 2.0)
    assert torch.allclose(g.points, f.points * 2 + torch.tensor([10.0, 0.0], dtype=torch.float64))
    assert torch.allclose(g.velocity, 2 * f.velocity) and torch.allclose(g.score, f.score / 2)
    for bad in ([0.0], [1.5], list(torch.linspace(0.1, 1, 50))):
        with pytest.raises(BadInputError):
            drift_field(mix.denoise, sch, gaussian_cloud(4, 0), torch.tensor(bad))
