"""Each guidance method against its formula, on an exact two-class Gaussian mixture whose conditional,
unconditional and blurred denoisers and densities are all known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from core.diffusion.denoisers import with_labels
from core.diffusion.guidance import METHODS, Guidance, Guided, guided
from core.diffusion.mixture import ClassMixture, GaussianMixture
from core.diffusion.samplers import SAMPLERS, sample
from core.errors import BadInputError


def two_classes() -> ClassMixture:
    a = GaussianMixture(torch.tensor([[-1.5, 0.0], [1.5, 0.0]]), torch.tensor([0.4, 0.3]), torch.tensor([1.0, 2.0]))
    b = GaussianMixture(torch.tensor([[0.0, 0.5], [0.0, -1.8]]), torch.tensor([[0.5, 0.2], [0.3, 0.3]]))
    return ClassMixture([a, b], torch.tensor([0.6, 0.4]))


def points(n: int = 64, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def grad_log(law: GaussianMixture, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The score by autograd of the closed-form log density: independent of any denoiser."""
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(law.log_prob(xg, sigma).sum(), xg)
    return g


def test_class_mixture_denoisers_are_the_scores_of_its_densities():
    mix = two_classes()
    x, labels = points(), torch.tensor([0, 1, 2, 1] * 16)
    for s in (0.2, 1.0, 4.0):
        sigma = torch.full((len(x),), s, dtype=torch.float64)
        d = mix.denoise(x, sigma, labels)
        for c in (0, 1, None):
            rows = labels == (mix.null_label if c is None else c)
            torch.testing.assert_close(d[rows], x[rows] + s**2 * grad_log(mix.law(c), x[rows], s))
        # the whole law's denoiser is the classes' mixed by P(c | x) at this noise level
        logs = torch.stack([mix.class_weights[c].log() + mix.log_prob(x, c, s) for c in (0, 1)], 1)
        post = torch.softmax(logs, 1)
        each = torch.stack([mix.denoise(x, sigma, torch.full((len(x),), c)) for c in (0, 1)], 1)
        torch.testing.assert_close(mix.denoise(x, sigma), (post[:, :, None] * each).sum(1))


def test_a_blurred_law_is_the_law_seen_through_more_noise():
    mix, b = two_classes(), 0.7
    x = points()
    for c in (0, 1, None):
        torch.testing.assert_close(mix.blurred(b).log_prob(x, c, 0.5), mix.log_prob(x, c, math.hypot(0.5, b)))
    with pytest.raises(BadInputError, match="blur"):
        mix.blurred(-1.0)


def pair(mix: ClassMixture, x, s, c):
    sigma = torch.full((len(x),), s, dtype=torch.float64)
    labels = torch.full((len(x),), c)
    return sigma, labels, mix.denoise(x, sigma, labels), mix.denoise(x, sigma)


def test_cfg_guides_along_the_tilted_law_score_at_each_noise_level():
    """D_u + w (D_c - D_u) has the score w s(x | c) + (1 - w) s(x): that of p(x | c)^w p(x)^(1 - w) at sigma."""
    mix, x = two_classes(), points()
    for w in (0.0, 2.0, 5.0):
        for s in (0.3, 2.0):
            sigma, labels, _, _ = pair(mix, x, s, 1)
            out = Guided(mix.denoise, Guidance(scale=w), mix.null_label)(x, sigma, labels)
            score = w * grad_log(mix.law(1), x, s) + (1 - w) * grad_log(mix.whole, x, s)
            torch.testing.assert_close(out, x + s**2 * score, atol=1e-6, rtol=1e-6)  # the expanded quadratic form


def test_autoguidance_with_the_model_itself_is_no_guidance_and_else_follows_its_formula():
    mix, x = two_classes(), points()
    weak = mix.blurred(0.6)
    for w in (0.0, 2.5, 7.0):
        sigma, labels, cond, _ = pair(mix, x, 1.0, 0)
        itself = Guided(mix.denoise, Guidance(method="auto", scale=w), guide=mix.denoise)(x, sigma, labels)
        torch.testing.assert_close(itself, cond)
        out = Guided(mix.denoise, Guidance(method="auto", scale=w), guide=weak.denoise)(x, sigma, labels)
        score = w * grad_log(mix.law(0), x, 1.0) + (1 - w) * grad_log(weak.law(0), x, 1.0)
        torch.testing.assert_close(out, x + score)


def test_apg_without_down_weighting_momentum_or_cap_is_cfg():
    mix, x = two_classes(), points()
    sigma, labels, cond, uncond = pair(mix, x, 0.8, 1)
    apg = Guided(mix.denoise, Guidance(method="apg", scale=4.0, eta=1.0, momentum=0.0), mix.null_label)
    torch.testing.assert_close(apg(x, sigma, labels), uncond + 4.0 * (cond - uncond))


def test_apg_drops_the_parallel_part_keeps_a_running_update_and_caps_its_norm():
    mix, x = two_classes(), points()
    w, beta = 3.0, -0.5
    sigma, labels, cond, uncond = pair(mix, x, 0.8, 1)
    orth = Guided(mix.denoise, Guidance(method="apg", scale=w, eta=0.0, momentum=0.0), mix.null_label)
    change = orth(x, sigma, labels) - cond
    torch.testing.assert_close((change * cond).sum(1), torch.zeros(len(x), dtype=torch.float64))
    delta = cond - uncond
    unit = cond / cond.norm(dim=1, keepdim=True)
    expected = (w - 1) * (delta - (delta * unit).sum(1, keepdim=True) * unit)
    torch.testing.assert_close(change, expected)
    # momentum: the second call's update is its own plus beta times the first call's
    moving = Guided(mix.denoise, Guidance(method="apg", scale=w, eta=1.0, momentum=beta), mix.null_label)
    first = moving(x, sigma, labels)
    torch.testing.assert_close(first, cond + (w - 1) * delta)
    sigma2, _, cond2, uncond2 = pair(mix, x, 0.5, 1)
    second = moving(x, sigma2, labels)
    torch.testing.assert_close(second, cond2 + (w - 1) * ((cond2 - uncond2) + beta * delta))
    # a third call adds beta times the running update (not the last raw one): Delta_3 + beta (Delta_2 + beta Delta_1)
    sigma3, _, cond3, uncond3 = pair(mix, x, 0.9, 1)  # sigma may rise within a run (EDM's churn): no reset
    running = (cond2 - uncond2) + beta * delta
    torch.testing.assert_close(moving(x, sigma3, labels), cond3 + (w - 1) * ((cond3 - uncond3) + beta * running))
    # a new run starts afresh: a call at the grid's top level, or another batch
    grid = torch.tensor([0.8, 0.5, 0.0], dtype=torch.float64)
    fresh = Guided(mix.denoise, Guidance(method="apg", scale=w, eta=1.0, momentum=beta), mix.null_label, sigmas=grid)
    fresh(x, sigma2, labels)
    torch.testing.assert_close(fresh(x, sigma.float().double(), labels), first)  # sigma 0.8: the top again
    moving(x[:5], sigma[:5], labels[:5])
    torch.testing.assert_close(moving(x[:5], sigma2[:5], labels[:5]), second[:5])
    # the cap acts on the running update, before the projection: with eta = 0, beta != 0 and a cap of r
    r = 0.05
    capped = Guided(mix.denoise, Guidance(method="apg", scale=w, eta=0.0, momentum=beta, threshold=r), 2)
    capped(x, sigma, labels)
    running = (cond2 - uncond2) + beta * delta
    delta2 = running * (r / running.norm(dim=1, keepdim=True)).clamp(max=1)
    unit2 = cond2 / cond2.norm(dim=1, keepdim=True)
    orth = delta2 - (delta2 * unit2).sum(1, keepdim=True) * unit2
    out = capped(x, sigma2, labels)
    torch.testing.assert_close(out, cond2 + (w - 1) * orth)
    assert float(((out - cond2) / (w - 1)).norm(dim=1).max()) <= r + 1e-12


def test_rescale_brings_the_noise_prediction_back_to_the_conditional_ones_size():
    mix, x = two_classes(), points()
    s, w = 1.5, 5.0
    sigma, labels, cond, uncond = pair(mix, x, s, 0)
    cfg = uncond + w * (cond - uncond)
    plain = Guided(mix.denoise, Guidance(method="rescale", scale=w, rescale=0.0), mix.null_label)(x, sigma, labels)
    torch.testing.assert_close(plain, cfg)
    full = Guided(mix.denoise, Guidance(method="rescale", scale=w, rescale=1.0), mix.null_label)(x, sigma, labels)
    eps_c, eps_full, eps_cfg = (x - cond) / s, (x - full) / s, (x - cfg) / s
    torch.testing.assert_close(eps_full.pow(2).mean(1), eps_c.pow(2).mean(1))
    torch.testing.assert_close(
        eps_full / eps_full.norm(dim=1, keepdim=True), eps_cfg / eps_cfg.norm(dim=1, keepdim=True)
    )
    half = Guided(mix.denoise, Guidance(method="rescale", scale=w, rescale=0.7), mix.null_label)(x, sigma, labels)
    ratio = eps_c.norm(dim=1, keepdim=True) / eps_cfg.norm(dim=1, keepdim=True)
    torch.testing.assert_close((x - half) / s, eps_cfg * (0.7 * ratio + 0.3))


def ddim_cfgpp(mix: ClassMixture, x: torch.Tensor, sigmas: torch.Tensor, label: int, lam: float) -> torch.Tensor:
    """CFG++ as its paper writes DDIM, in VP coordinates: z_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps, with
    x_0 guided at lambda and the unconditional eps for the re-noising; a_t = 1 / (1 + sigma^2)."""
    labels = torch.full((len(x),), label)
    z = x / math.sqrt(1 + float(sigmas[0]) ** 2)
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        a, a_next = 1 / (1 + s * s), 1 / (1 + s_next * s_next)
        sigma = torch.full((len(x),), s, dtype=torch.float64)
        ve = z / math.sqrt(a)  # the same state in sigma space, where the exact denoisers take it
        x0_c, x0_u = mix.denoise(ve, sigma, labels), mix.denoise(ve, sigma)
        eps_u = (z - math.sqrt(a) * x0_u) / math.sqrt(1 - a)
        x0 = x0_u + lam * (x0_c - x0_u)
        z = math.sqrt(a_next) * x0 + math.sqrt(1 - a_next) * eps_u
    return z


def test_cfgpp_under_euler_and_ddim_is_the_papers_ddim_update():
    mix = two_classes()
    sigmas = torch.tensor([40.0, 12.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0], dtype=torch.float64)
    x = points(32, seed=3, scale=40.0)
    for lam in (0.2, 0.6, 1.0):
        expected = ddim_cfgpp(mix, x, sigmas, 0, lam)
        for name in ("euler", "ddim"):
            denoiser = with_labels(
                mix.denoise,
                torch.zeros(len(x), dtype=torch.long),
                Guidance(method="cfg++", scale=lam),
                2,
                sigmas=sigmas,
            )
            torch.testing.assert_close(sample(name, denoiser, x, sigmas), expected)
    # float32 states on a float64 grid (as a page runs an image model): the same scales, no division by rounding
    x32 = x.float()
    d32 = with_labels(
        mix.denoise, torch.zeros(len(x), dtype=torch.long), Guidance(method="cfg++", scale=0.6), 2, sigmas=sigmas
    )
    torch.testing.assert_close(sample("ddim", d32, x32, sigmas), ddim_cfgpp(mix, x, sigmas, 0, 0.6).float())
    step = Guided(mix.denoise, Guidance(method="cfg++", scale=0.5), 2, sigmas=sigmas)
    scales = step.step_scale(torch.tensor([40.0, 12.0, 0.05, 0.01], dtype=torch.float64))
    torch.testing.assert_close(scales, torch.tensor([0.5 * 40 / 28, 0.5 * 12 / 8, 0.5, 0.5], dtype=torch.float64))
    # off the grid, a call takes the scale of the step that holds its sigma: a midpoint of 12 -> 4, a churned
    # sigma above the top (EDM), a level rounded to float32
    off = step.step_scale(torch.tensor([7.0, 50.0, 4.0 * (1 + 3e-8), 3.999999], dtype=torch.float64))
    torch.testing.assert_close(off, torch.tensor([0.5 * 12 / 8, 0.5 * 40 / 28, 0.5 * 4 / 2.5, 0.5 * 4 / 2.5]).double())


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_guides_only_inside_its_interval(method):
    mix, x = two_classes(), points(8)
    options = {"scale": 0.7 if method == "cfg++" else 3.0, "interval": (0.5, 2.0)}
    g = Guided(
        mix.denoise, Guidance(method=method, **options), 2, mix.blurred(0.5).denoise, torch.tensor([3.0, 1.0, 0.0])
    )
    labels = torch.ones(8, dtype=torch.long)
    sigma = torch.tensor([0.2, 0.5, 0.7, 1.0, 2.0, 2.5, 5.0, 1.5], dtype=torch.float64)
    out, cond = g(x, sigma, labels), mix.denoise(x, sigma, labels)
    inside = (sigma > 0.5) & (sigma <= 2.0)
    torch.testing.assert_close(out[~inside], cond[~inside])
    assert bool((out[inside] - cond[inside]).abs().amax(1).gt(1e-6).all())


def test_every_sampler_runs_with_every_method():
    mix = two_classes()
    sigmas = torch.tensor([20.0, 5.0, 1.5, 0.5, 0.1, 0.0], dtype=torch.float64)
    labels = torch.arange(6) % 2
    for method in METHODS:
        g = Guidance(method=method, scale=0.8 if method == "cfg++" else 2.0)
        for name in SAMPLERS:
            d = with_labels(mix.denoise, labels, g, mix.null_label, guide=mix.blurred(0.5).denoise, sigmas=sigmas)
            x = points(6, seed=1, scale=20.0)
            out = sample(name, d, x, sigmas, generator=torch.Generator().manual_seed(0))
            assert out.shape == x.shape and bool(out.isfinite().all()), (method, name)


def test_bad_settings_are_refused_with_a_sentence():
    with pytest.raises(BadInputError, match="lambda"):
        Guidance(method="cfg++", scale=1.5)
    with pytest.raises(BadInputError, match="Unknown guidance"):
        Guidance(method="pag")
    with pytest.raises(BadInputError, match="finite"):
        Guidance(scale=float("nan"))
    with pytest.raises(BadInputError, match="momentum"):
        Guidance(method="apg", momentum=1.0)
    with pytest.raises(BadInputError, match="interval"):
        Guidance(interval=(2.0, 1.0))
    mix = two_classes()
    with pytest.raises(BadInputError, match="guide"):
        Guided(mix.denoise, Guidance(method="auto", scale=2.0))
    with pytest.raises(BadInputError, match="grid"):
        Guided(mix.denoise, Guidance(method="cfg++", scale=0.5), 2)
    with pytest.raises(BadInputError, match="unconditional"):
        Guided(mix.denoise, Guidance(scale=2.0))
    assert guided(mix.denoise, Guidance(method="apg", scale=1.0)) == mix.denoise  # neutral: left alone
