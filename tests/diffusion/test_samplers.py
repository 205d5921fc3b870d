"""Samplers against exact answers: the Gaussian probability-flow ODE and a Gaussian mixture's law."""

from __future__ import annotations

import inspect
import itertools
import math
import re

import numpy as np
import pytest
import torch

from core.diffusion.denoisers import DiscreteTimeDenoiser
from core.diffusion.flow_map import consistency_function
from core.diffusion.grids import karras_sigmas
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import AFS, SAMPLERS, analytic_first_step, randn_like, sample
from core.diffusion.schedules import make_schedule
from core.diffusion.trajectory import PathRecorder, TrajectoryRecorder
from core.errors import BadInputError
from core.labs.ground_truth.accuracy import ode_endpoint, steps_for
from tests.helpers import tiny_unet

SIGMA_MAX = 80.0

# Deterministic samplers (and stochastic ones with their noise switched off) with their theoretical order.
ODE_CASES = [
    ("euler", {}, 1),
    ("ddim", {}, 1),
    ("euler_ancestral", {"eta": 0.0}, 1),
    ("heun", {}, 2),
    ("dpm_2", {}, 2),
    ("dpmpp_2m", {}, 2),
    ("dpmpp_2m_sde", {"eta": 0.0}, 2),
    ("dpmpp_2s_ancestral", {"eta": 0.0}, 2),
    ("edm", {"churn": 0.0}, 2),
    ("lms", {}, None),  # order 4 with a lower-order start; only checked to beat second order
    ("dpmpp_3m", {"d2_term": "taylor"}, 3),
    ("deis", {"order": 1}, 1),
    ("deis", {"order": 2}, 2),
    ("deis", {"order": 3}, None),
    ("ipndm", {}, 2),  # the equal-step weights on Karras's unequal steps
    ("ipndm", {"weights": "variable"}, None),
    *[("unipc", {"order": p, "variant": v, "corrector": "off"}, p) for p in (1, 2) for v in ("bh1", "bh2")],
    *[("unipc", {"order": p, "variant": v}, p + 1) for p in (1, 2) for v in ("bh1", "bh2")],  # UniC: one more
    *[("unipc", {"order": 3, "variant": v, "corrector": c}, None) for v in ("bh1", "bh2") for c in ("on", "off")],
]


def _gaussian_case(n: int = 256):
    """Data N(mu, diag(s^2)): D is linear, and the ODE from sigma_T to 0 has the closed form
    x(sigma) = mu + (x_T - mu) sqrt((s^2 + sigma^2) / (s^2 + sigma_T^2))."""
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    s = torch.tensor([[0.5, 1.0, 2.0]], dtype=torch.float64)
    x_T = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * SIGMA_MAX
    exact = mu + (x_T - mu) * torch.sqrt(s**2 / (s**2 + SIGMA_MAX**2))
    return GaussianMixture(mu, s).denoise, x_T, exact


@pytest.mark.parametrize(("name", "options", "order"), ODE_CASES, ids=[c[0] + str(c[1]) for c in ODE_CASES])
def test_deterministic_samplers_converge_to_the_exact_ode_solution_at_their_order(name, options, order):
    denoiser, x_T, exact = _gaussian_case()
    steps = [20, 40, 80, 160, 320]
    errors = []
    for n in steps:
        out = sample(name, denoiser, x_T.clone(), karras_sigmas(n, 0.002, SIGMA_MAX), **options)
        errors.append(float((out - exact).abs().max()))
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.1
    measured = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    if order is None:
        assert measured > 2.5, errors
    else:
        assert abs(measured - order) < 0.3, (measured, errors)


def test_the_published_dpmpp_3m_is_second_order_and_the_taylor_weight_makes_it_third():
    """DPM-Solver++(3M) as published (diffusers, k-diffusion) weighs its second difference by half of what the
    Taylor expansion asks (see its docstring): on the exact Gaussian ODE its error falls 4x per halving of the
    step (second order), and with the Taylor weight 8x (third)."""
    denoiser, x_T, exact = _gaussian_case()
    for term, order in (("published", 2), ("taylor", 3)):
        errors = [
            float(
                (sample("dpmpp_3m", denoiser, x_T.clone(), karras_sigmas(n, 0.002, SIGMA_MAX), d2_term=term) - exact)
                .abs()
                .max()
            )
            for n in (80, 160)
        ]
        assert abs(np.log2(errors[0] / errors[1]) - order) < 0.25, (term, errors)


def _mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([[-3.0, 0.0], [3.0, 2.0], [0.0, -4.0]]),
        torch.tensor([[0.5, 0.3], [0.8, 0.8], [0.4, 1.0]]),
        torch.tensor([0.5, 0.3, 0.2]),
    )


STOCHASTIC_CASES = [
    ("ddpm", {"variance": "small"}, 400),
    ("ddpm", {"variance": "large"}, 400),
    ("ddim", {"eta": 1.0}, 400),
    ("euler_ancestral", {}, 400),
    ("dpmpp_2s_ancestral", {}, 100),
    ("dpmpp_2m_sde", {}, 100),
    ("dpmpp_3m", {"eta": 1.0}, 100),
    ("edm", {"churn": 40.0}, 100),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "steps"), STOCHASTIC_CASES, ids=[c[0] + str(c[1]) for c in STOCHASTIC_CASES]
)
def test_stochastic_samplers_reproduce_a_gaussian_mixture(name, options, steps):
    mix, n = _mixture(), 20_000
    g = torch.Generator().manual_seed(1)
    x = sample(
        name,
        mix.denoise,
        torch.randn(n, 2, generator=g) * SIGMA_MAX,
        karras_sigmas(steps, 0.002, SIGMA_MAX),
        generator=g,
        **options,
    )
    nearest = ((x[:, None, :].double() - mix.means[None]) ** 2).sum(-1).argmin(1)
    for k in range(3):
        pts = x[nearest == k].double()
        assert len(pts) / n == pytest.approx(float(mix.weights[k]), abs=0.02), "weight"
        assert (pts.mean(0) - mix.means[k]).abs().max() < 0.06, "mean"
        cov = torch.cov(pts.T)
        std_ratio = cov.diagonal().sqrt() / mix.stds[k]
        assert (std_ratio - 1).abs().max() < 0.07, f"std ratio {std_ratio}"
        corr = cov[0, 1] / cov.diagonal().prod().sqrt()
        assert abs(float(corr)) < 0.05, "the components are axis-aligned"


def _isotropic_mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([[-3.0, 0.0], [3.0, 2.0], [0.0, -4.0]]),
        torch.tensor([[0.5, 0.5], [0.8, 0.8], [0.4, 0.4]]),
        torch.tensor([0.5, 0.3, 0.2]),
    )


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_consistency_sampling_with_the_ideal_consistency_function_draws_the_mixture(steps):
    """Given the ideal consistency function (the mixture's exact flow map to t = 0, core/diffusion/flow_map.py, in
    the engine's coordinates x = x_t / (1 - t), sigma = t / (1 - t)), the multistep consistency sampler draws the
    mixture itself at any number of steps: each jump lands on the data, each fresh noise level is the exact
    marginal around it."""
    mix, n = _isotropic_mixture(), 4000

    def ideal(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.double()
        return consistency_function(mix, x.double() / (1 + sigma)[:, None], sigma / (1 + sigma)).to(x.dtype)

    t = 1 - torch.arange(steps + 1, dtype=torch.float64) / steps
    sigmas = (t / (1 - t)).clamp(max=1e4)  # t = 1 (infinite sigma) starts at 1e4, where x_t is 1e-4 data
    g = torch.Generator().manual_seed(steps)
    x = sample("consistency", ideal, torch.randn(n, 2, generator=g) * 1e4, sigmas, generator=g)
    nearest = ((x[:, None, :].double() - mix.means[None]) ** 2).sum(-1).argmin(1)
    for k in range(3):
        pts = x[nearest == k].double()
        assert len(pts) / n == pytest.approx(float(mix.weights[k]), abs=0.03), "weight"
        assert (pts.mean(0) - mix.means[k]).abs().max() < 0.08, "mean"
        assert ((pts.std(0) / mix.stds[k]) - 1).abs().max() < 0.1, "spread"
    # an ordinary denoiser's D is the posterior mean: at the top of the grid that is the mean of the whole law,
    # so one consistency step sends every point there
    one = sample("consistency", mix.denoise, torch.randn(n, 2, generator=g) * 1e4, sigmas[[0, -1]], generator=g)
    assert (one - mix.weights @ mix.means).abs().max() < 1e-2


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_seed_same_output_and_shapes(name):
    mix = _mixture()
    sigmas = karras_sigmas(8, 0.01, 20.0)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return sample(name, mix.denoise, torch.randn(64, 2, generator=g) * 20, sigmas, generator=g)

    a, b = run(3), run(3)
    assert a.shape == (64, 2) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    if SAMPLERS[name].injects_noise():
        # same start, different noise stream
        g = torch.Generator().manual_seed(3)
        x = torch.randn(64, 2, generator=g) * 20
        c = sample(name, mix.denoise, x, sigmas, generator=torch.Generator().manual_seed(4))
        assert not torch.equal(a, c)


@pytest.fixture(scope="module")
def unet_denoiser():
    return DiscreteTimeDenoiser(tiny_unet(seed=5, channels=3), make_schedule("linear", 1000), "epsilon")


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_runs_on_images_and_counts_its_calls(name, unet_denoiser):
    calls = []

    def counted(x, sigma):
        calls.append(sigma.clone())
        return unet_denoiser(x, sigma)

    steps, seen = 6, []
    sigmas = make_schedule("linear", 1000).sampling_sigmas(steps, "trailing")
    x = torch.randn(2, 3, 8, 8) * float(sigmas[0])
    out = sample(name, counted, x, sigmas, generator=torch.Generator().manual_seed(0), callback=seen.append)
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()
    assert len(calls) == SAMPLERS[name].nfe(steps)
    assert [s.index for s in seen] == list(range(steps))
    assert [s.sigma_next for s in seen] == sigmas[1:].tolist()
    for step in seen:
        torch.testing.assert_close(step.eps, (step.x - step.denoised) / step.sigma)
        assert step.x.shape == step.denoised.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("name", [n for n, s in SAMPLERS.items() if s.injects_noise()])
def test_one_generator_per_sample_makes_each_sample_reproducible_alone(name):
    mix = _mixture()
    sigmas = karras_sigmas(10, 0.01, 20.0)
    seeds = [11, 12, 13]
    starts = torch.cat([torch.randn(1, 2, generator=torch.Generator().manual_seed(s)) for s in seeds]) * 20
    gens = [torch.Generator().manual_seed(100 + s) for s in seeds]
    batch = sample(name, mix.denoise, starts.clone(), sigmas, generator=gens)
    alone = sample(name, mix.denoise, starts[1:2].clone(), sigmas, generator=[torch.Generator().manual_seed(112)])
    torch.testing.assert_close(batch[1:2], alone)


def test_randn_like_rejects_a_wrong_number_of_generators():
    with pytest.raises(BadInputError):
        randn_like(torch.zeros(3, 2), [torch.Generator()])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "nope"},
        {"sigmas": torch.tensor([1.0, 0.5, -0.1])},  # a grid may stop above 0 (set_alpha_to_one = false), not below
        {"sigmas": torch.tensor([1.0, 2.0, 0.0])},
        {"bogus": 1.0},
    ],
)
def test_sample_checks_its_arguments(kwargs):
    args = {"name": "euler", "sigmas": torch.tensor([2.0, 1.0, 0.0])} | kwargs
    with pytest.raises(BadInputError):
        sample(denoiser=_mixture(), x=torch.zeros(2, 2), **args)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_registry_documents_each_sampler(name):
    spec = SAMPLERS[name]
    assert "$" in spec.doc, "the update rule in LaTeX"
    for year in re.findall(r"\b20\d\d\b", spec.paper):  # the paper the registry names, with its year
        assert year in spec.doc, (spec.paper, year)
    assert spec.paper.split()[0].rstrip(",") in spec.doc, "its first author"
    source = inspect.getsource(spec.fn)
    assert source.startswith(f"def {name}(")
    # The code shown is the code run: it calls the denoiser, or hands it on to the sampler whose update it is
    hands_on = [s.fn for s in SAMPLERS.values() if s.name != name and f"return {s.name}(" in source]
    assert "denoiser(" in source or (len(hands_on) == 1 and "denoiser(" in inspect.getsource(hands_on[0]))
    params = inspect.signature(spec.fn).parameters
    assert list(params)[:3] == ["denoiser", "x", "sigmas"]
    assert {"generator", "callback"} <= set(params)
    for option in spec.options:
        assert option.name in params, option.name
    assert spec.order >= 1


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_nfe_counts_the_denoiser_calls_a_run_makes(name):
    mix, calls = _mixture(), []

    def counting(x, sigma):
        calls.append(len(x))
        return mix.denoise(x, sigma)

    for steps in (1, 2, 7):
        calls.clear()
        x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0)) * 20
        sample(name, counting, x, karras_sigmas(steps, 0.01, 20.0), generator=torch.Generator().manual_seed(1))
        assert len(calls) == SAMPLERS[name].nfe(steps), (name, steps)


# With noise switched off from step 0, each stochastic sampler is its own deterministic version.
DETERMINISTIC_TWIN = {
    "ddpm": ("ddim", {}),
    "ddim": ("ddim", {"eta": 0.0}),
    "euler_ancestral": ("euler", {}),
    "dpmpp_2s_ancestral": ("dpmpp_2s_ancestral", {"eta": 0.0}),
    "dpmpp_2m_sde": ("dpmpp_2m_sde", {"eta": 0.0}),
    "dpmpp_3m": ("dpmpp_3m", {"eta": 0.0}),
    "edm": ("heun", {}),
    "consistency": ("euler", {}),
}


@pytest.mark.parametrize("name", [n for n, s in SAMPLERS.items() if s.stochastic])
def test_noise_until_switches_stochastic_samplers_to_their_deterministic_step(name):
    mix = _mixture()
    sigmas = karras_sigmas(12, 0.01, 20.0)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * 20
    options = {"eta": 1.0} if name in ("ddim", "dpmpp_3m") else {}
    twin, twin_options = DETERMINISTIC_TWIN[name]
    quiet = sample(
        name, mix.denoise, x.clone(), sigmas, generator=torch.Generator().manual_seed(1), noise_until=0, **options
    )
    expected = sample(twin, mix.denoise, x.clone(), sigmas, **twin_options)
    torch.testing.assert_close(quiet, expected, rtol=1e-5, atol=1e-5)
    # noise for the first 4 steps only: the same states as a fully noisy run up to step 4, then apart
    states = {}
    for until in (4, None):
        seen = []
        g = torch.Generator().manual_seed(2)
        sample(name, mix.denoise, x.clone(), sigmas, generator=g, callback=seen.append, noise_until=until, **options)
        states[until] = [step.x for step in seen]
    for k in range(4):  # (edm injects its noise before it reports a step, so compare up to step 3)
        torch.testing.assert_close(states[4][k], states[None][k])
    assert not torch.allclose(states[4][6], states[None][6])


def test_noise_until_is_refused_for_deterministic_samplers():
    with pytest.raises(BadInputError, match="no option noise_until"):
        sample("euler", _mixture(), torch.zeros(2, 2), torch.tensor([2.0, 1.0, 0.0]), noise_until=1)


def test_options_are_typed_and_checked_against_their_range():
    mix, sigmas = _mixture(), karras_sigmas(4, 0.01, 20.0)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0)) * 20
    lms = SAMPLERS["lms"]
    assert lms.parse_options({"order": 2.0}) == {"order": 2} and isinstance(
        lms.parse_options({"order": 2.0})["order"], int
    )
    torch.testing.assert_close(
        sample("lms", mix.denoise, x.clone(), sigmas, order=2.0), sample("lms", mix.denoise, x.clone(), sigmas, order=2)
    )
    for name, options, message in (
        ("lms", {"order": 2.5}, "whole number"),
        ("lms", {"order": 5}, "between 1 and 4"),
        ("ddim", {"eta": 1.5}, "between 0 and 1"),
        ("ddim", {"eta": float("nan")}, "between 0 and 1"),
        ("ddim", {"eta": "lots"}, "must be a number"),
        ("ddpm", {"variance": "huge"}, "one of small, large"),
        ("edm", {"noise_until": -1}, "noise_until must be at least 0"),
    ):
        with pytest.raises(BadInputError, match=message):
            sample(name, mix.denoise, x.clone(), sigmas, **options)


def test_which_settings_draw_fresh_noise():
    ddim, euler_a, edm, ddpm = (SAMPLERS[n] for n in ("ddim", "euler_ancestral", "edm", "ddpm"))
    assert not ddim.injects_noise() and ddim.injects_noise({"eta": 0.3})  # DDIM's default eta is 0
    assert euler_a.injects_noise() and not euler_a.injects_noise({"eta": 0.0})
    assert not edm.injects_noise({"churn": 0.0}) and ddpm.injects_noise() and not SAMPLERS["heun"].injects_noise()
    # DDIM with eta > 0 takes noise_until (it is stochastic then); the deterministic samplers do not
    assert "noise_until" in {o.name for o in ddim.accepts} and "noise_until" not in {
        o.name for o in SAMPLERS["heun"].accepts
    }


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("noise_until", [None, 3])
def test_ddim_is_euler_ancestral_at_every_eta(eta, noise_until):
    """x0 + (sigma_down / sigma)(x - x0) = x + (sigma_down - sigma) d: one update, two default etas."""
    mix, sigmas = _mixture(), karras_sigmas(8, 0.01, 20.0)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 20
    runs = {
        name: sample(
            name,
            mix.denoise,
            x.clone(),
            sigmas,
            generator=torch.Generator().manual_seed(5),
            eta=eta,
            noise_until=noise_until,
        )
        for name in ("ddim", "euler_ancestral")
    }
    assert torch.equal(runs["ddim"], runs["euler_ancestral"])
    defaults = {name: inspect.signature(SAMPLERS[name].fn).parameters["eta"].default for name in runs}
    assert defaults == {"ddim": 0.0, "euler_ancestral": 1.0}


def test_ddpm_is_euler_ancestral_and_ddim_is_euler_at_the_same_seed():
    """What the pages say when two cells look alike: the same update in VE coordinates."""
    mix, sigmas = _mixture(), karras_sigmas(15, 0.01, 20.0)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 20
    runs = {
        name: sample(name, mix.denoise, x.clone(), sigmas, generator=torch.Generator().manual_seed(5))
        for name in ("ddpm", "euler_ancestral", "ddim", "euler", "dpmpp_2m")
    }
    torch.testing.assert_close(runs["ddpm"], runs["euler_ancestral"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(runs["ddim"], runs["euler"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(runs["euler"], runs["dpmpp_2m"], atol=1e-3)  # a different sampler does differ


# ---- the analytic first step (AFS, Zhou et al. 2024) --------------------------------------------------------

AFS_SAMPLERS = [n for n, s in SAMPLERS.items() if AFS in s.options]


def _centred(mix: GaussianMixture) -> GaussianMixture:
    """The mixture moved and scaled to zero mean and unit variance on each axis."""
    mean = (mix.weights[:, None] * mix.means).sum(0)
    var = (mix.weights[:, None] * (mix.stds**2 + (mix.means - mean) ** 2)).sum(0)
    return GaussianMixture((mix.means - mean) / var.sqrt(), mix.stds / var.sqrt(), mix.weights)


def _start(n: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * SIGMA_MAX


def test_the_analytic_first_step_is_an_option_of_the_deterministic_multistep_solvers_and_off_by_default():
    assert set(AFS_SAMPLERS) == {"lms", "dpmpp_2m", "dpmpp_3m", "unipc", "deis", "ipndm"}
    for name in AFS_SAMPLERS:
        assert inspect.signature(SAMPLERS[name].fn).parameters["afs"].default == AFS.default == "off"
    with pytest.raises(BadInputError, match="no option afs"):
        sample("euler", _mixture().denoise, torch.zeros(2, 2), torch.tensor([2.0, 1.0, 0.0]), afs="on")
    with pytest.raises(BadInputError, match="one of off, on"):
        sample("dpmpp_2m", _mixture().denoise, torch.zeros(2, 2), torch.tensor([2.0, 1.0, 0.0]), afs="yes")


@pytest.mark.parametrize("name", AFS_SAMPLERS)
def test_the_analytic_first_step_reports_its_closed_form_and_calls_the_model_from_the_second_step_on(name):
    """For data N(0, I) the exact noise at sigma is sigma x / (1 + sigma^2); AFS's, x / sqrt(1 + sigma^2), is that
    times sqrt(1 + sigma^2) / sigma: a relative 1 / (2 sigma^2) too long. The callback (and so both recorders) sees
    the closed form as the first step's D."""
    mix = GaussianMixture(torch.zeros(1, 2), torch.ones(1, 2))
    steps, x = 6, _start(256)
    sigmas = karras_sigmas(steps, 0.002, SIGMA_MAX)
    calls, seen = [], []
    trajectory, paths = TrajectoryRecorder(total_steps=steps), PathRecorder()

    def counting(x, sigma):
        calls.append(float(sigma[0]))
        return mix.denoise(x, sigma)

    def record(step):
        seen.append(step)
        trajectory(step)
        paths(step)

    sample(name, counting, x.clone(), sigmas, callback=record, afs="on")
    assert calls == sigmas[1:-1].tolist()  # no call at sigma_max
    assert [s.index for s in seen] == list(range(steps)) and len(trajectory.frames) == len(paths.states) == steps
    first = seen[0]
    assert first.sigma == SIGMA_MAX and torch.equal(first.x, x)
    root = math.sqrt(1 + SIGMA_MAX**2)
    torch.testing.assert_close(first.eps, x / root, rtol=1e-12, atol=0)
    torch.testing.assert_close(first.denoised, x - SIGMA_MAX * x / root, rtol=1e-9, atol=0)
    torch.testing.assert_close(trajectory.frames[0].denoised, first.denoised[: trajectory.keep])
    torch.testing.assert_close(paths.denoised[0], first.denoised)
    exact = (x - mix.denoise(x, x.new_full((len(x),), SIGMA_MAX))) / SIGMA_MAX
    too_long = (first.eps - exact).norm(dim=1) / exact.norm(dim=1)
    torch.testing.assert_close(too_long * 2 * SIGMA_MAX**2, torch.ones_like(too_long), rtol=1e-3, atol=0)


def test_on_centred_data_the_analytic_noise_differs_from_the_exact_one_by_order_one_over_sigma_squared():
    """On centred data of unit variance (here a non-Gaussian mixture) the gap falls 4x per doubling of sigma."""
    mix = _centred(_mixture())
    gaps = []
    for sigma in (40.0, 80.0, 160.0, 320.0):
        x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * sigma
        afs = (x - analytic_first_step(x, sigma)) / sigma
        exact = (x - mix.denoise(x, x.new_full((len(x),), sigma))) / sigma
        gaps.append(float((afs - exact).abs().max()))
    assert gaps[1] < 1e-3, gaps  # at sigma = 80
    for coarse, fine in itertools.pairwise(gaps):
        assert coarse / fine == pytest.approx(4, rel=0.05), gaps


@pytest.mark.parametrize("name", AFS_SAMPLERS)
def test_with_the_analytic_first_step_samplers_still_converge_to_the_exact_ode_solution(name):
    """On the exact Gaussian ODE (off-centre data, where AFS's slope is off by about mu / sigma_max): the error
    still vanishes, and AFS's share of it, the first step's length times its slope's error, is first order."""
    denoiser, x_T, exact = _gaussian_case()
    steps = [20, 40, 80, 160, 320]
    errors, gaps = [], []
    for n in steps:
        grid = karras_sigmas(n, 0.002, SIGMA_MAX)
        out = sample(name, denoiser, x_T.clone(), grid, afs="on")
        errors.append(float((out - exact).abs().max()))
        gaps.append(float((out - sample(name, denoiser, x_T.clone(), grid)).abs().max()))
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.01, errors
    measured = -np.polyfit(np.log(steps), np.log(gaps), 1)[0]
    assert abs(measured - 1) < 0.3, (measured, gaps)


@pytest.mark.parametrize("name", AFS_SAMPLERS)
def test_the_analytic_first_step_saves_exactly_one_call_and_the_nfe_says_so(name):
    mix, calls, spec = _mixture(), [], SAMPLERS[name]

    def counting(x, sigma):
        calls.append(len(x))
        return mix.denoise(x, sigma)

    for steps in (1, 2, 3, 7):
        for afs in ("off", "on"):
            calls.clear()
            x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0)) * 20
            sample(name, counting, x, karras_sigmas(steps, 0.01, 20.0), afs=afs)
            assert len(calls) == spec.nfe(steps, {"afs": afs}), (steps, afs)
        # one call fewer, except in a one-step run, whose only step is also its last (it stays a model call)
        assert (
            spec.nfe(steps, {"afs": "on"})
            == spec.nfe(steps) - (steps > 1)
            == spec.nfe(steps, {"afs": "off"}) - (steps > 1)
        )
    for nfe in (1, 2, 5, 8):  # an NFE budget buys one step more
        assert steps_for(spec, nfe, {"afs": "on"}) == nfe + 1 and steps_for(spec, nfe) == nfe
    assert SAMPLERS["heun"].nfe(5, {"afs": "on"}) == SAMPLERS["heun"].nfe(5)  # no such option there


def test_on_centred_data_the_call_saved_costs_far_less_than_the_solvers_own_error():
    """Where the premise holds (zero mean, unit variance), a run with AFS is nearly the same run without it."""
    mix = _centred(_mixture())
    x_T = _start(512)
    exact = ode_endpoint(mix, x_T)
    for name in AFS_SAMPLERS:
        for steps in (3, 5, 7, 9):
            grid = karras_sigmas(steps, 0.002, SIGMA_MAX)
            plain = sample(name, mix.denoise, x_T.clone(), grid)
            afs = sample(name, mix.denoise, x_T.clone(), grid, afs="on")
            assert float((afs - plain).abs().max()) < 0.05 * float((plain - exact).abs().max()), (name, steps)


def test_at_some_fixed_nfe_the_analytic_first_step_lowers_the_error():
    """Measured, not assumed: at NFE 4 to 8 on the (off-centre) mixture, RMS distance to the exact ODE end point
    with and without AFS (which spends its budget on one step more). At so few steps the error is not monotone in
    the steps, so AFS need not win at every NFE; it must win at some."""
    mix, x_T = _mixture(), _start(1000)
    exact = ode_endpoint(mix, x_T)
    for name in ("dpmpp_2m", "ipndm"):
        spec, errors = SAMPLERS[name], {}
        for afs in ("off", "on"):
            for nfe in range(4, 9):
                steps = steps_for(spec, nfe, {"afs": afs})
                assert spec.nfe(steps, {"afs": afs}) == nfe
                out = sample(name, mix.denoise, x_T.clone(), karras_sigmas(steps, 0.002, SIGMA_MAX), afs=afs)
                errors[afs, nfe] = float(((out - exact) ** 2).sum(1).mean().sqrt())
        assert any(errors["on", nfe] < errors["off", nfe] for nfe in range(4, 9)), (name, errors)
