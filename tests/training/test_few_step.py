"""The few-step trainers (core/training/few_step/): each formula against an independent computation (closed forms,
finite differences, the diffusion trainer's own flow loss), the span input of the MLP, the shared training
interface, and each method trained on two moons beating its flow teacher's own one-step Euler sample."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from core.data.standardize import Standardizer
from core.data.toy import TOY_SETS
from core.diffusion.flow import mixture_velocity
from core.errors import BadInputError
from core.metrics.points import sliced_wasserstein
from core.metrics.reference import reference_bands
from core.models.mlp import MLPConfig, build_mlp
from core.training.diffusion import DiffusionTrainer, TrainConfig, paired_batches, tensor_batches
from core.training.few_step import base, consistency, meanflow, methods, progressive, reflow, shortcut

NET = MLPConfig(dim=2, width=64, depth=2, num_steps=1000)
CONFIG = TrainConfig(
    batch_size=256, lr=1e-2, lr_schedule="cosine", adam_betas=(0.9, 0.99), prediction_type="flow_prediction", seed=0
)
STEPS = 600


def _randomise(model, seed=9):
    """Nonzero output (and span) layers, which start at zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.out.weight.normal_(0, 0.3, generator=g)
        if model.span_proj is not None:
            model.span_proj.weight.normal_(0, 0.3, generator=g)
    return model


# ---- the MLP's span input --------------------------------------------------------------------------------


def test_span_input_is_optional_and_starts_silent():
    plain, spanned = (
        build_mlp(NET, seed=3),
        build_mlp(MLPConfig(**{**NET.to_dict(), "span_embedding": "sinusoidal"}), 3),
    )
    shared = dict(spanned.named_parameters())
    for name, p in plain.named_parameters():  # the same seed draws the same weights with or without the span
        assert torch.equal(p, shared[name]), name
    _randomise(plain)
    spanned.load_state_dict({**spanned.state_dict(), **plain.state_dict()})
    x, t = torch.randn(6, 2), torch.linspace(0, 1000, 6)
    assert torch.equal(spanned(x, t, span=torch.full((6,), 250.0)), plain(x, t))  # zero projection: no effect yet
    _randomise(spanned)
    assert not torch.allclose(spanned(x, t, span=torch.full((6,), 250.0)), spanned(x, t))  # then the span matters
    assert torch.equal(spanned(x, t), spanned(x, t, span=torch.zeros(6)))  # no span given: span 0
    with pytest.raises(BadInputError, match="no span input"):
        plain(x, t, span=t)


def test_span_config_round_trips_and_old_saved_configs_mean_none():
    config = MLPConfig(dim=2, span_embedding="fourier")
    assert MLPConfig(**config.to_dict()) == config and config.to_saved()["span_embedding"] == "fourier"
    old = {k: v for k, v in NET.to_dict().items() if k != "span_embedding"}  # a file saved before the field
    assert MLPConfig(**old).span_embedding is None and build_mlp(MLPConfig(**old)).span is None
    with pytest.raises(BadInputError, match="span embedding"):
        MLPConfig(dim=2, span_embedding="wavelet")


# ---- consistency models ----------------------------------------------------------------------------------


def test_the_consistency_parametrisation_is_the_identity_at_time_zero():
    net = _randomise(build_mlp(NET, seed=1))
    x = torch.randn(64, 2) * 3
    assert torch.equal(consistency.consistency_function(net, x, torch.zeros(64)), x)
    assert not torch.allclose(consistency.consistency_function(net, x, torch.full((64,), 0.5)), x)


def test_the_consistency_grid_and_its_lognormal_weights():
    grid = consistency.consistency_grid(19)
    assert grid[0] == 0 and grid[-1] == 1 and bool((grid.diff() > 0).all())
    sigma = grid[1:-1] / (1 - grid[1:-1])  # the Karras sigmas: evenly spaced in sigma^(1/7) from 0.002
    assert sigma[0].item() == pytest.approx(0.002) and torch.allclose(
        (sigma ** (1 / 7)).diff(), (sigma ** (1 / 7)).diff()[:1].expand(16), rtol=1e-9
    )
    w = consistency.lognormal_weights(grid, p_mean=-1.1, p_std=2.0)
    assert w.sum().item() == pytest.approx(1.0) and bool((w > 0).all())
    # an interval's weight is the normal mass of log sigma = logit t between its ends
    lo, hi = torch.logit(grid[5:7].double())
    mass = 0.5 * (math.erf((hi + 1.1) / (2 * math.sqrt(2))) - math.erf((lo + 1.1) / (2 * math.sqrt(2))))
    assert w[5].item() == pytest.approx(mass, rel=1e-9)


def test_consistency_training_doubles_its_grid_along_the_run():
    tr = methods.few_step_trainer(
        "consistency_training", net=NET, config=CONFIG, batches=_batches(), total_steps=800, s0=10, s1=1280
    )
    # K' = floor(800 / (log2(128) + 1)) = 100 steps per stage: 11, 21, 41, ... 1281 points
    assert [tr.grid_points(k) for k in (0, 99, 100, 250, 699, 700, 799, 5000)] == [
        11,
        11,
        21,
        41,
        641,
        1281,
        1281,
        1281,
    ]


def _gaussian_consistency(m: torch.Tensor, s: torch.Tensor):
    """The exact consistency function of x_0 ~ N(m, diag s^2) on the flow path. x_t ~ N((1 - t) m, sigma_t^2) with
    sigma_t^2 = (1 - t)^2 s^2 + t^2; the probability-flow ODE keeps each point's z-score, x_t = (1 - t) m +
    sigma_t z, so f(x, t) = m + s (x - (1 - t) m) / sigma_t (and f(x, 1) = m + s x: noise to data)."""

    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tb = t.to(x.dtype)[:, None]
        return m + s * (x - (1 - tb) * m) / ((1 - tb) ** 2 * s**2 + tb**2).sqrt()

    return f


def test_the_closed_form_consistency_function_is_constant_along_the_exact_flow():
    m, s = torch.tensor([1.5, -0.5], dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64)
    f = _gaussian_consistency(m, s)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    start = f(x, torch.ones(50))
    ts = torch.linspace(1, 0.0, 201, dtype=torch.float64)
    for t, t_next in itertools.pairwise(ts):  # RK4 on the exact velocity of the Gaussian's path

        def v(y, tt):
            return mixture_velocity(m[None], s.reshape(1), torch.ones(1, dtype=torch.float64), y, tt.expand(len(y)))

        h = t_next - t
        k1 = v(x, t)
        k2 = v(x + h / 2 * k1, t + h / 2)
        k3 = v(x + h / 2 * k2, t + h / 2)
        k4 = v(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        torch.testing.assert_close(f(x, t_next.expand(50)), start, atol=1e-9, rtol=0)
    torch.testing.assert_close(x, start, atol=1e-9, rtol=0)  # and at t = 0 it is where the flow ends


@pytest.mark.parametrize("nfe", [1, 2, 4, 8])
def test_the_multistep_consistency_sampler_with_the_exact_function_samples_exactly(nfe):
    m, s = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5])
    noise = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(nfe))
    x = consistency.consistency_sample(_gaussian_consistency(m, s), noise, nfe, torch.Generator().manual_seed(7))
    torch.testing.assert_close(x.mean(0), m, atol=0.01, rtol=0)
    torch.testing.assert_close(x.std(0), s, atol=0.01, rtol=0)
    corr = torch.corrcoef(x.T)[0, 1]
    assert abs(corr) < 0.01  # fresh noise at each step keeps the axes independent


# ---- MeanFlow --------------------------------------------------------------------------------------------


def _spanned_net(seed=4):
    return _randomise(build_mlp(MLPConfig(**{**NET.to_dict(), "span_embedding": "sinusoidal"}), seed)).double()


def test_meanflow_jvp_target_matches_finite_differences_along_the_trajectory():
    net = _spanned_net()
    assert meanflow.time_input(net) == 1.0  # sinusoidal, T = 1000: fed t itself
    assert meanflow.time_input(build_mlp(MLPConfig(dim=2, time_embedding="raw", num_steps=100))) == 100.0  # u = t

    def u(z, r, t):
        return base.net_velocity(net, z, t, t - r, meanflow.time_input(net))

    g = torch.Generator().manual_seed(0)
    z, v = torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
    t = 0.3 + 0.6 * torch.rand(16, generator=g, dtype=torch.float64)
    r = t * torch.rand(16, generator=g, dtype=torch.float64)
    out, target = meanflow.meanflow_target(u, z, r, t, v)
    # d/dt u(z_t, r, t) along dz/dt = v, by fourth-order central differences (h not smaller: the network embeds
    # its times in float32)
    h = 1e-3

    def along(k):
        return u(z + k * h * v, r, t + k * h)

    du_dt = (-along(2) + 8 * along(1) - 8 * along(-1) + along(-2)) / (12 * h)
    torch.testing.assert_close(out, u(z, r, t))
    torch.testing.assert_close(target, v - (t - r)[:, None] * du_dt, atol=2e-4, rtol=1e-3)
    assert not target.requires_grad
    assert (target - v).abs().max() > 0.05  # the correction is far above the tolerance at these times
    without_z = v - (t - r)[:, None] * (u(z, r, t + h) - u(z, r, t - h)) / (2 * h)  # forgetting v . grad_z u
    assert (without_z - target).abs().max() > 0.05


def test_the_exact_average_velocity_of_a_linear_flow_is_its_own_meanflow_target():
    a = torch.tensor(0.8, dtype=torch.float64)  # dz/dt = a z, so z_r = z_t exp(-a (t - r))

    def u(z, r, t):
        span = (t - r)[:, None]
        return z * -torch.expm1(-a * span) / span

    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 2, generator=g, dtype=torch.float64)
    t = 0.5 + 0.5 * torch.rand(8, generator=g, dtype=torch.float64)
    r = t - 0.4 * torch.rand(8, generator=g, dtype=torch.float64) - 0.05
    out, target = meanflow.meanflow_target(u, z, r, t, a * z)
    torch.testing.assert_close(target, out, atol=1e-12, rtol=0)
    torch.testing.assert_close(z - (t - r)[:, None] * out, z * torch.exp(-a * (t - r))[:, None])


# ---- shortcut models -------------------------------------------------------------------------------------


def test_shortcut_loss_at_d_zero_is_flow_matching():
    data = torch.randn(500, 2)
    sc = shortcut.Shortcut(_spanned_net().float(), CONFIG, tensor_batches(data), consistency_share=0.0)
    fm = DiffusionTrainer(_spanned_net().float(), base.flow_schedule(), CONFIG, tensor_batches(data))
    x0 = data[:64]
    torch.testing.assert_close(sc.loss(x0, {}), fm.loss(x0, {}))  # the same seed: the same times and noise
    # and by hand: |s(x_t, t, 0) - (eps - x_0)|^2 with the flow loss's draws
    g = torch.Generator().manual_seed(CONFIG.seed)
    t = ((torch.rand(1, generator=g) + torch.arange(64) / 64) % 1.0).clamp(1e-5, 1 - 1e-5)
    eps = torch.randn(64, 2, generator=g)
    x_t = (1 - t[:, None]) * x0 + t[:, None] * eps
    by_hand = torch.mean((base.net_velocity(sc.model, x_t, t, torch.zeros(64)) - (eps - x0)) ** 2)
    torch.testing.assert_close(
        shortcut.Shortcut(_spanned_net().float(), CONFIG, tensor_batches(data), consistency_share=0.0).loss(x0, {}),
        by_hand,
    )


def test_the_exact_average_velocity_of_a_linear_flow_is_shortcut_consistent():
    a = 1.3  # dx/dt = a x: the average velocity over [t - d, t] is x (1 - exp(-a d)) / d

    def s(x, t, d):
        return x * -torch.expm1(-a * d)[:, None] / d[:, None]

    x, t = torch.randn(10, 2, dtype=torch.float64), torch.full((10,), 0.75, dtype=torch.float64)
    for d in (0.5, 0.125, 1 / 128):
        dd = torch.full((10,), d, dtype=torch.float64)
        torch.testing.assert_close(shortcut.shortcut_target(s, x, t, dd, dd), s(x, t, 2 * dd), atol=1e-12, rtol=0)
    # the smallest level's halves use d = 0, the instantaneous velocity a x: two Euler steps
    half = torch.full((10,), 1 / 256, dtype=torch.float64)

    def velocity(x, t, d):
        return torch.where(d[:, None] == 0, a * x, s(x, t, d.clamp_min(1e-30)))

    two_euler = (a * x + a * (x - half[:, None] * a * x)) / 2
    torch.testing.assert_close(shortcut.shortcut_target(velocity, x, t, half, torch.zeros(10)), two_euler)


# ---- progressive distillation ----------------------------------------------------------------------------


def test_progressive_target_is_zero_loss_for_the_exact_two_step_map_of_a_linear_teacher():
    a, b = 0.7, -1.2  # teacher v(x, t) = a x + b t

    def teacher(x, t):
        return a * x + b * t[:, None]

    x = torch.randn(32, 2, dtype=torch.float64)
    t = torch.full((32,), 0.75, dtype=torch.float64)
    dt = torch.full((32,), 0.25, dtype=torch.float64)
    # two Euler steps of h = -dt/2, worked by hand: x' = (1 + a h) x + b h t, x'' = (1 + a h) x' + b h (t + h)
    h = -0.125
    x1 = (1 + a * h) * x + b * h * 0.75
    x2 = (1 + a * h) * x1 + b * h * (0.75 + h)
    student = (x2 - x) / (2 * h)  # the one step from 0.75 to 0.5 that lands on x''
    loss = torch.mean((student - progressive.progressive_target(teacher, x, t, dt)) ** 2)
    assert loss.item() < 1e-28
    assert torch.mean((teacher(x, t) - progressive.progressive_target(teacher, x, t, dt)) ** 2) > 1e-3


def test_progressive_rounds_halve_the_steps_and_keep_each_student(teacher):
    tr = methods.few_step_trainer(
        "progressive", net=NET, config=CONFIG, batches=_batches(), total_steps=40, teacher=teacher, teacher_steps=8
    )
    assert (tr.rounds, tr.round_length, tr.student_steps) == (3, 13, 4)
    torch.testing.assert_close(tr.model(torch.ones(3, 2), torch.full((3,), 500.0)), teacher(torch.ones(3, 2), 500.0))
    tr.train(40)
    assert tr.student_steps == 1 and sorted(tr.students) == [2, 4]
    assert tr.teacher is tr.students[2] and tr.students[4] is not tr.students[2]
    noise = torch.randn(5, 2)
    with torch.inference_mode():
        by_hand = base.euler_sample(lambda x, t: base.net_velocity(tr.students[4], x, t), noise, 4)
    torch.testing.assert_close(tr.sample(noise, 4), by_hand)  # 4 steps: the student made for 4


# ---- reflow for a few steps --------------------------------------------------------------------------------


def _gaussian_pairs(n: int, m: torch.Tensor, s: torch.Tensor, seed: int = 0):
    """(noise, sample) pairs of the exact flow ODE of x_0 ~ N(m, diag s^2): it keeps each point's z-score, so the
    sample of noise eps is m + s eps (see _gaussian_consistency)."""
    eps = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    return eps, m + s * eps


def test_reflow_times_sit_on_the_few_step_grid_with_the_share_asked_and_off_it_the_loss_is_flow_matchings():
    top, mid = base.flow_schedule().capped_sigmas(2, "trailing")[:2].tolist()  # 1,000 and about 1
    m, s = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5])
    eps, x0 = _gaussian_pairs(512, m, s)
    tr = reflow.Reflow(build_mlp(NET, 0), CONFIG, paired_batches(x0, eps), grid_share=0.6)
    # Euler in 1 step calls the network at the top; in 2 at the top and half way
    torch.testing.assert_close(tr.visits, torch.tensor([top / (1 + top), top / (1 + top), mid / (1 + mid)]).double())
    assert tr.calls == [(0, 0), (1, 0), (1, 1)] and abs(tr.visits[2] - 0.5) < 1e-3
    t, call = tr.times(20_000)
    on_grid = call >= 0
    torch.testing.assert_close(t[on_grid], tr.visits[call[on_grid]].float())
    assert abs(on_grid.float().mean().item() - 0.6) < 0.02 and t.min() > 0 and t.max() < 1
    assert abs((t > 0.9).float().mean().item() - (0.4 + 0.4 * 0.1)) < 0.02  # t = 1 twice as often as t = 1/2
    # off the grid the loss is flow matching's on the pair's line: zero for the exact velocity of these straight
    # pairs, eps - x_0 = (1 - s) eps - m with eps = (x_t - (1 - t) m) / ((1 - t) s + t)
    tr.times = lambda n: (torch.rand(n, generator=torch.Generator().manual_seed(3)) * 0.98 + 0.01, torch.full((n,), -1))

    class Exact(torch.nn.Module):
        def forward(self, x, t):
            tb = (t / base.TIME_SCALE)[:, None]
            return (1 - s) * (x - (1 - tb) * m) / ((1 - tb) * s + tb) - m

    tr._net = Exact()
    assert tr.loss(x0[:64], {"noise": eps[:64]}).item() < 1e-10
    with pytest.raises(BadInputError, match="pairs"):
        tr.loss(x0[:64], {})
    with pytest.raises(BadInputError, match="grid"):
        reflow.Reflow(build_mlp(NET, 0), CONFIG, paired_batches(x0, eps), grid_nfe=(0,))


def test_reflow_trains_a_later_grid_step_where_the_sampler_gets_to():
    """The second call of a 2-step grid is trained at the student's own first Euler step from the noise (no
    gradient through it), towards the pair's sample in a straight line; without own_path, on the pair's line."""
    m, s = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5])
    eps, x0 = _gaussian_pairs(64, m, s)
    net = _randomise(build_mlp(NET, 0))
    for own in (True, False):
        tr = reflow.Reflow(net, CONFIG, paired_batches(x0, eps), grid_nfe=(2,), grid_share=1.0, own_path=own)
        top, mid = tr.grids[0].tolist()
        tr.times = lambda n, mid=mid: (torch.full((n,), mid, dtype=torch.float32), torch.full((n,), 1))
        with torch.no_grad():
            if own:  # one Euler step of the network from the sampler's start, top * eps
                x = top * eps + (mid - top) * base.net_velocity(net, top * eps, torch.full((64,), top))
                target = (x - x0) / mid
            else:
                x, target = (1 - mid) * x0 + mid * eps, eps - x0
            expected = torch.mean((base.net_velocity(net, x, torch.full((64,), mid)) - target) ** 2)
            torch.testing.assert_close(tr.loss(x0, {"noise": eps}), expected)
            torch.testing.assert_close(tr.path_point(eps, tr.grids[0], 0), top * eps)


def test_reflow_on_the_exact_pairs_of_a_gaussian_samples_it_in_one_step():
    """Trained on pairs of the exact ODE of N(m, diag s^2), one Euler step from new noise gives N(m, diag s^2):
    the coupling's lines are straight and never cross, so t = 1's jump is the whole map."""
    m, s = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5])
    eps, x0 = _gaussian_pairs(4096, m, s)
    tr = reflow.Reflow(build_mlp(NET, 0), CONFIG, paired_batches(x0, eps))
    tr.train(400)
    noise = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(1))
    for nfe in (1, 2):
        x = tr.sample(noise, nfe)
        torch.testing.assert_close(x.mean(0), m, atol=0.05, rtol=0)
        torch.testing.assert_close(x.std(0), s, atol=0.05, rtol=0)
        torch.testing.assert_close(x, m + s * noise, atol=0.15, rtol=0)  # each noise to its own sample


# ---- the common interface --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moons():
    cloud = TOY_SETS["moons"].cloud(3000, seed=0)
    return cloud, Standardizer.fit(cloud.points)


def _batches():
    cloud = TOY_SETS["moons"].cloud(3000, seed=0)
    return tensor_batches(Standardizer.fit(cloud.points).transform(cloud.points).float())


@pytest.fixture(scope="module")
def teacher(moons):
    """A flow-matching model on two moons: the teacher, trained like every student (config, steps, seed)."""
    torch.set_num_threads(1)
    tr = DiffusionTrainer(build_mlp(NET, CONFIG.seed), base.flow_schedule(), CONFIG, _batches())
    tr.train(STEPS)
    return tr.sampling_model


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_every_method_trains_interruptibly_and_samples_the_ladder(method, teacher):
    tr = methods.few_step_trainer(method, net=NET, config=CONFIG, batches=_batches(), total_steps=30, teacher=teacher)

    class Stop(Exception):
        pass

    def stop_at_20(trainer):
        if trainer.step == 20:
            raise Stop

    with pytest.raises(Stop):
        tr.train(30, stop_at_20, every=10)
    assert tr.step == 20 and [m["step"] for m in tr.metrics] == [10, 20]
    tr.train(10)
    assert tr.step == 30 and set(tr.metrics[-1]) >= {"step", "loss", "lr", "seconds"}
    noise = torch.randn(50, 2)
    out = tr.samples(noise)
    assert list(out) == [1, 2, 4, 8] and all(x.shape == (50, 2) and bool(x.isfinite().all()) for x in out.values())
    torch.testing.assert_close(tr.sample(noise, 2, torch.Generator().manual_seed(0)), out[2])  # same seed, same points


def test_the_builder_refuses_what_it_cannot_build(teacher):
    with pytest.raises(BadInputError, match="Unknown few-step method"):
        methods.few_step_trainer("reflow", net=NET, config=CONFIG, batches=_batches(), total_steps=10)
    for method in methods.NEEDS_TEACHER:
        with pytest.raises(BadInputError, match="teacher"):
            methods.few_step_trainer(method, net=NET, config=CONFIG, batches=_batches(), total_steps=10)
    with pytest.raises(BadInputError, match="size"):
        small = MLPConfig(dim=2, width=32, depth=2, num_steps=1000)
        methods.few_step_trainer(
            "shortcut", net=small, config=CONFIG, batches=_batches(), total_steps=10, teacher=teacher
        )


# ---- trained: every method beats the teacher's one Euler step --------------------------------------------

# What each reached at NFE 1 in SW2 to fresh moons (standardised units; 600 steps of batch 256, MLP 64 x 2, the
# teacher's one Euler step about 0.89, two fresh sets of 2,000 about 0.03-0.10 apart): consistency distillation
# 0.07, consistency training 0.37 (CT improves slowly: 0.15 after 3,000 steps at lr 1e-3), shortcut 0.09,
# MeanFlow 0.10, progressive distillation 0.15 (its last round, 1 step, has a fifth of the budget).
NEAR_DATA = {"consistency_distillation": 0.2, "shortcut": 0.2, "meanflow": 0.2, "progressive": 0.25}


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_one_step_beats_the_teachers_one_euler_step(method, teacher, moons):
    cloud, std = moons
    tr = methods.few_step_trainer(
        method, net=NET, config=CONFIG, batches=_batches(), total_steps=STEPS, teacher=teacher
    )
    tr.train(STEPS)
    n = 2000
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    ref = std.transform(cloud.fresh(n, torch.Generator().manual_seed(2)).double())

    def sw2(x, y):
        return sliced_wasserstein(x.double(), y, projections=128, generator=torch.Generator().manual_seed(0))

    band = reference_bands(
        lambda m, g: std.transform(cloud.fresh(m, g).double()), (n, n), {"sw2": sw2}, repeats=5, reference=ref
    )["sw2"]
    baseline = sw2(methods.teacher_sample(teacher, noise, 1), ref)
    one_step = sw2(tr.sample(noise, 1), ref)
    assert one_step < baseline / 2 and one_step < baseline - 5 * band.high, (one_step, baseline, band.values)
    if method in NEAR_DATA:
        assert one_step < NEAR_DATA[method], (one_step, band.values)
