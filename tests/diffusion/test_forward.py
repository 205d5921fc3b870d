from __future__ import annotations

import pytest
import torch

from core.diffusion.forward import forward_trajectory, q_sample_ve, q_sample_vp
from core.diffusion.schedules import make_schedule
from core.errors import BadInputError


def test_vp_and_ve_are_the_same_process():
    sched = make_schedule("cosine", 100)
    x0, eps = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    t = torch.tensor([0, 10, 50, 99])
    ab, sigma = sched.alphas_cumprod[t].float(), sched.sigmas[t].float()
    vp, ve = q_sample_vp(x0, ab, eps), q_sample_ve(x0, sigma, eps)
    torch.testing.assert_close(vp, ve * ab.sqrt().reshape(-1, 1, 1, 1), rtol=1e-5, atol=1e-5)


def test_q_sample_marginal_moments():
    ab = 0.3
    x0 = torch.full((200_000,), 2.0)
    xt = q_sample_vp(x0, ab, torch.randn(200_000))
    assert float(xt.mean()) == pytest.approx(2.0 * ab**0.5, abs=0.01)
    assert float(xt.var()) == pytest.approx(1 - ab, rel=0.02)


def test_chain_trajectory_has_the_markov_chain_joint_law():
    sched = make_schedule("linear", 1000)
    ts = [100, 300, 700]
    x0 = torch.zeros(100_000, 1)
    traj = forward_trajectory(x0, sched, ts, generator=torch.Generator().manual_seed(0), form="ve")
    assert traj.shape == (3, 100_000, 1)
    s = sched.sigmas[ts].float()
    # VE increments are independent with variance sigma_b^2 - sigma_a^2
    inc = traj[2] - traj[1]
    assert float(inc.var()) == pytest.approx(float(s[2] ** 2 - s[1] ** 2), rel=0.03)
    cov = float(((traj[1]) * inc).mean())
    assert abs(cov) < 0.05 * float(s[1] * (s[2] ** 2 - s[1] ** 2).sqrt())
    # VP marginals: Var x_t = 1 - ab_t for x0 = 0
    vp = forward_trajectory(x0, sched, ts, generator=torch.Generator().manual_seed(1))
    for k, t in enumerate(ts):
        assert float(vp[k].var()) == pytest.approx(float(1 - sched.alphas_cumprod[t]), rel=0.03)


def test_shared_noise_trajectory_uses_one_eps():
    sched = make_schedule("linear", 1000)
    x0 = torch.randn(2, 1, 4, 4)
    traj = forward_trajectory(x0, sched, [0, 500, 999], generator=torch.Generator().manual_seed(0), noise="shared")
    ab = sched.alphas_cumprod[[0, 500, 999]].float()
    eps = [(traj[k] - ab[k].sqrt() * x0) / (1 - ab[k]).sqrt() for k in range(3)]
    torch.testing.assert_close(eps[0], eps[1], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(eps[1], eps[2], rtol=1e-3, atol=1e-3)


def test_same_seed_same_trajectory():
    sched = make_schedule("linear", 50)
    x0 = torch.randn(3, 2)
    a = forward_trajectory(x0, sched, [1, 20], generator=torch.Generator().manual_seed(5))
    b = forward_trajectory(x0, sched, [1, 20], generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("ts", [[], [5, 1], [-1], [50]])
def test_bad_timesteps(ts):
    with pytest.raises(BadInputError):
        forward_trajectory(torch.zeros(1, 2), make_schedule("linear", 50), ts)


def test_parse_timesteps():
    from core.diffusion.forward import parse_timesteps

    assert parse_timesteps("999, 0; 50,50", 1000) == [0, 50, 999]
    for text in ("a, b", "", "-1", "1000", ",".join(map(str, range(20)))):
        with pytest.raises(BadInputError):
            parse_timesteps(text, 1000)
