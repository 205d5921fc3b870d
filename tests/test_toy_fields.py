"""Distances between point sets and drift fields, against their definitions."""

from __future__ import annotations

import pytest
import torch

from core.denoisers import DiscreteTimeDenoiser, GaussianMixtureDenoiser
from core.errors import BadInputError
from core.fields import drift_field, grid
from core.metrics import median_distance, mmd, sliced_wasserstein
from core.schedules import make_schedule


def _cloud(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_sliced_wasserstein_is_zero_on_a_set_and_grows_with_a_shift():
    a = _cloud(2000, 0)
    assert sliced_wasserstein(a, a) < 1e-12
    same_law = sliced_wasserstein(a, _cloud(2000, 1))
    shifted = sliced_wasserstein(a, _cloud(2000, 1, shift=1.0))
    assert same_law < 0.1 < shifted
    # A shift by s along one axis moves every projection on direction d by s * d_x: SW2 = s * sqrt(E d_x^2).
    exact = sliced_wasserstein(a, a + torch.tensor([2.0, 0.0], dtype=torch.float64), projections=4000)
    assert exact == pytest.approx(2.0 * 0.5**0.5, rel=0.03)


def test_mmd_is_zero_on_a_set_positive_on_a_shift_and_checked():
    a = _cloud(1500, 0)
    assert mmd(a, a) == 0.0
    same, near, far = mmd(a, _cloud(1500, 1)), mmd(a, _cloud(1500, 1, 0.5)), mmd(a, _cloud(1500, 1, 2.0))
    assert same < near < far
    assert mmd(a, _cloud(1500, 1), unbiased=True) < 0.05  # unbiased: two draws of one law are ~0 apart
    assert mmd(a, a + 1.0, bandwidth=1.0) > 0
    with pytest.raises(BadInputError):
        mmd(a, torch.randn(10, 3))
    with pytest.raises(BadInputError):
        mmd(a, a, bandwidth=0.0)
    assert median_distance(torch.ones(5, 2)) == 1.0
    assert median_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def _mixture() -> GaussianMixtureDenoiser:
    return GaussianMixtureDenoiser(torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.3, 0.4]))


def test_grid_has_square_cells_over_the_padded_box():
    axes, pts = grid(torch.tensor([0.0, 0.0]), torch.tensor([4.0, 1.0]), 21, pad=0.0)
    assert [len(a) for a in axes] == [21, 6] and pts.shape == (21 * 6, 2)
    assert float(axes[0][1] - axes[0][0]) == pytest.approx(float(axes[1][1] - axes[1][0]), rel=0.05)
    with pytest.raises(BadInputError):
        grid(torch.zeros(3), torch.ones(3), 100)  # 1e6 points


def test_velocity_is_the_probability_flow_ode_run_backwards():
    mix, sch = _mixture(), make_schedule("linear", 1000)
    y = _cloud(300, 2)
    u, h = 0.3, 1e-5
    field = drift_field(mix, sch, y, torch.tensor([u]))
    # One tiny Euler step of the exact VE ODE dx/dsigma = (x - D) / sigma from u down to u - h, seen in VP.
    s, s2 = (float(sch.t_to_sigma(v * 999)) for v in (u, u - h))
    x = y * (1 + s**2) ** 0.5
    x2 = x + (s2 - s) * (x - mix(x, torch.full((300,), s, dtype=torch.float64))) / s
    numeric = (x2 / (1 + s2**2) ** 0.5 - y) / h
    assert torch.allclose(field.velocity[0], numeric, atol=2e-3 * float(numeric.abs().max()))


def test_score_is_the_gradient_of_the_noisy_log_density():
    mix, sch = _mixture(), make_schedule("cosine", 500)
    y = _cloud(100, 3).requires_grad_(True)
    u = 0.4
    s = float(sch.t_to_sigma(u * 499))
    # p_u(y) = p_sigma(y sqrt(1 + s^2)) (1 + s^2)^(D/2), so grad_y log p_u = sqrt(1 + s^2) grad_x log p_sigma.
    mix.log_prob(y * (1 + s**2) ** 0.5, s).sum().backward()
    field = drift_field(mix, sch, y.detach(), torch.tensor([u]))
    assert torch.allclose(field.score[0], y.grad, atol=1e-6)


def test_a_model_that_predicts_the_exact_noise_gives_the_exact_field():
    mix, sch = _mixture(), make_schedule("linear", 1000)

    def exact_eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = sch.t_to_sigma(t.double())
        x = x_t.double() * (1 + sigma[:, None] ** 2).sqrt()
        return ((x - mix(x, sigma)) / sigma[:, None]).float()

    learned = DiscreteTimeDenoiser(exact_eps, sch, "epsilon")
    _, pts = grid(torch.tensor([-2.0, -2.0]), torch.tensor([2.0, 2.0]), 8)
    times = torch.tensor([1.0, 0.5, 0.05])
    a, b = drift_field(learned, sch, pts, times), drift_field(mix, sch, pts, times)
    assert torch.allclose(a.velocity, b.velocity, rtol=1e-3, atol=1e-3 * float(b.velocity.abs().max()))
    diff = a - b
    assert float(diff.score.abs().max()) < 1e-2 * float(b.score.abs().max())


def test_fields_rescale_to_original_units_and_check_their_times():
    mix, sch = _mixture(), make_schedule("linear", 100)
    f = drift_field(mix, sch, _cloud(10, 0), torch.tensor([0.5]))
    g = f.rescaled(torch.tensor([10.0, 0.0], dtype=torch.float64), 2.0)
    assert torch.allclose(g.points, f.points * 2 + torch.tensor([10.0, 0.0], dtype=torch.float64))
    assert torch.allclose(g.velocity, 2 * f.velocity) and torch.allclose(g.score, f.score / 2)
    for bad in ([0.0], [1.5], list(torch.linspace(0.1, 1, 50))):
        with pytest.raises(BadInputError):
            drift_field(mix, sch, _cloud(4, 0), torch.tensor(bad))
