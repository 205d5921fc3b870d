"""The Inversion page's logic (core/labs/inversion.py): round trips with their paths, the error ladders against the
steps and the guidance scale, the measurement plan, the inverted noise's statistics, spherical interpolation, and
uploads as digits; and the Guidance page's latent fields (core/labs/guidance.latent_fields)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.images import as_digit, image_strip
from core.diffusion.denoisers import with_labels
from core.diffusion.grids import karras_sigmas
from core.diffusion.inversion import round_trip
from core.diffusion.mixture import GaussianMixture
from core.diffusion.samplers import SAMPLERS
from core.diffusion.trajectory import vp_state
from core.errors import BadInputError
from core.labs import inversion as inv
from core.labs.ground_truth.accuracy import fitted_order
from core.labs.guidance.fields import latent_fields
from core.labs.latent import latent_diffusion
from zoo.loaders import load_model
from zoo.registry import load_registry


@pytest.fixture(scope="module")
def cloud():
    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]]), torch.tensor([0.3, 0.5, 0.4]))
    return mix, mix.sample(150, torch.Generator().manual_seed(0))[0]


@pytest.fixture(scope="module")
def latent():
    registry = load_registry()
    return latent_diffusion(load_model(registry.model("mnist-latent-cond")))


def test_the_paths_run_from_the_data_to_the_noise_and_back_to_the_sample(cloud):
    mix, x0 = cloud
    sigmas = karras_sigmas(12, 0.002, 80.0).double()
    found = inv.invert_paths("heun", mix.denoise, x0, sigmas)
    assert found.up.shape == (12, 150, 2) and found.down.shape == (13, 150, 2)
    torch.testing.assert_close(found.up[0], vp_state(x0, float(sigmas[-2])))  # starts on the data at sigma_min
    torch.testing.assert_close(found.up[-1], vp_state(found.noise, 80.0))
    torch.testing.assert_close(found.down[0], found.up[-1])  # the way back starts where the way up ended
    torch.testing.assert_close(found.down[-1], found.sample)
    same = round_trip("heun", mix.denoise, x0, sigmas)
    torch.testing.assert_close(found.error, same.error.double())
    torch.testing.assert_close(found.eps, same.noise / 80.0)


def test_the_exact_ladder_falls_at_each_samplers_order(cloud):
    mix, x0 = cloud
    grid = lambda n: karras_sigmas(n, 0.002, 80.0).double()  # noqa: E731
    rows = list(inv.error_vs_steps(mix.denoise, x0, grid, ["euler", "dpmpp_2m"], inv.TOY_LADDER))
    assert [(r.sampler, r.steps) for r in rows[:3]] == [("euler", 2), ("euler", 4), ("euler", 8)]
    for name, low in (("euler", 0.8), ("dpmpp_2m", 2.0)):
        mine = [r for r in rows if r.sampler == name]
        assert [r.nfe for r in mine] == [SAMPLERS[name].nfe(n) for n in inv.TOY_LADDER]
        assert fitted_order([r.nfe for r in mine], [r.ode_error for r in mine]) > low
        assert mine[-1].ode_error < mine[3].ode_error / 10 and mine[-1].ode_se > 0


def test_a_learned_latent_round_trip_improves_with_steps_and_worsens_with_guidance(latent):
    x0 = torch.randn(80, 2, generator=torch.Generator().manual_seed(2)) * 0.8
    labels = torch.arange(80) % 10
    rows = list(
        inv.error_vs_steps(latent.conditioned(labels, 80, 1.0), x0, latent.schedule.capped_sigmas, ["ddim"], [5, 50])
    )
    assert rows[1].ode_error < rows[0].ode_error / 3
    sigmas = latent.schedule.capped_sigmas(20)
    by_scale = list(inv.error_vs_scale(lambda w: latent.conditioned(labels, 80, w), x0, sigmas, "dpmpp_2m", [1.0, 8.0]))
    assert [r.scale for r in by_scale] == [1.0, 8.0] and by_scale[1].error > 3 * by_scale[0].error


def test_stochastic_samplers_too_many_points_and_too_many_steps_are_refused(cloud):
    mix = cloud[0]
    for name, points, steps, message in (
        ("euler_ancestral", 10, 10, "fresh noise"),
        ("euler", inv.MAX_POINTS + 1, 10, "Invert 1 to"),
        ("euler", 10, inv.MAX_STEPS + 1, "Invert 1 to"),
    ):
        x = torch.zeros(points, 2, dtype=torch.float64)
        with pytest.raises(BadInputError, match=message):
            inv.invert_paths(name, mix.denoise, x, karras_sigmas(steps, 0.002, 80.0).double())


def test_noise_statistics_tell_gaussian_noise_from_other_noise():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(1, 28, 28, generator=g)
    gauss = inv.noise_moments(white)
    assert gauss["KS p-value"] > 0.01 and abs(gauss["excess kurtosis"]) < 0.5 and abs(gauss["std"] - 1) < 0.1
    flat = inv.noise_moments(torch.rand(784, generator=g) * 2 - 1)  # uniform on [-1, 1]: kurtosis -1.2
    assert flat["excess kurtosis"] == pytest.approx(-1.2, abs=0.2) and flat["KS p-value"] < 1e-6
    smooth = white.cumsum(-1).cumsum(-2)
    assert abs(inv.neighbour_correlation(white)) < 0.1 and inv.neighbour_correlation(smooth) > 0.9
    rows = inv.image_noise_rows(torch.stack([white, smooth]), ["white", "smooth"])
    assert [r["image"] for r in rows] == ["white", "smooth"] and rows[1]["neighbour corr."] > 0.9


def test_slerp_keeps_the_ends_and_walks_the_great_circle():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 5.0])
    path = inv.slerp(a, b, 5)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path.norm(dim=1), torch.tensor([3.0, 3.5, 4.0, 4.5, 5.0]))
    angles = torch.atan2(path[:, 1], path[:, 0])
    torch.testing.assert_close(angles, torch.linspace(0, torch.pi / 2, 5))  # even steps in angle
    noise = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    mid = inv.slerp(noise[0], noise[1], 3)[1]
    assert mid.norm() > 0.97 * noise.flatten(1).norm(dim=1).mean()  # a straight line's midpoint is ~0.71 of it
    assert ((noise[0] + noise[1]) / 2).norm() < 0.75 * noise.flatten(1).norm(dim=1).mean()
    torch.testing.assert_close(inv.slerp(a, a, 3), a.expand(3, 2))  # parallel ends: the line
    with pytest.raises(BadInputError):
        inv.slerp(a, torch.zeros(3), 4)
    with pytest.raises(BadInputError):
        inv.slerp(a, b, inv.MAX_FRAMES + 1)


def test_image_denoiser_binds_the_class_the_null_label_or_nothing():
    registry = load_registry()
    cond = load_model(registry.model("mnist-cond-cfg"))
    x, sigma = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.full((2,), 3.0)
    labels = torch.tensor([3, 7])
    with torch.inference_mode():
        torch.testing.assert_close(
            inv.image_denoiser(cond, labels, 2.0)(x, sigma),
            with_labels(cond.denoiser, labels, 2.0, cond.null_label)(x, sigma),
        )
        unconditional = inv.image_denoiser(cond, None, batch=2)(x, sigma)
        torch.testing.assert_close(unconditional, cond.denoiser(x, sigma, class_labels=torch.full((2,), 10)))
        assert not torch.allclose(unconditional, inv.image_denoiser(cond, labels)(x, sigma))
    plain = load_model(registry.model("mnist-ddpm-linear"))
    assert inv.image_denoiser(plain, labels, 3.0) is plain.denoiser


def test_round_trip_evaluations_count_both_ways_and_both_halves():
    heun, ddim = SAMPLERS["heun"].nfe, SAMPLERS["ddim"].nfe
    assert inv.round_trip_evaluations(["heun", "ddim"], [10], 3, False) == 3 * 2 * (heun(10) + ddim(10))
    assert inv.round_trip_evaluations(["ddim"], [10, 20], 1, True) == 2 * 2 * (ddim(10) + ddim(20))  # guided: 2 halves


def test_an_upload_becomes_a_light_digit_on_a_dark_ground():
    picture = np.full((90, 120), 235, dtype=np.uint8)  # a dark stroke on white paper, wider than tall
    picture[20:70, 55:65] = 10
    digit, flipped = as_digit(Image.fromarray(picture))
    assert flipped and digit.shape == (1, 28, 28) and digit.min() >= -1 and digit.max() <= 1
    assert digit[0, 14, 14] > 0.5 and digit[0, 1, 1] < -0.5  # the stroke is bright, the ground dark
    again, flipped_again = as_digit(Image.fromarray(255 - picture))
    assert not flipped_again and torch.allclose(again, digit, atol=2 / 255)
    assert image_strip(torch.zeros(3, 1, 28, 28), height=56).shape == (2 * 32, 2 * 92)  # 3 tiles, 2-pixel gaps, x2


def test_the_guided_field_is_the_unconditional_one_plus_w_times_the_difference(latent):
    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    (_, cond), (_, uncond), (title, guided) = latent_fields(latent, 4, 3.0, [0.3, 2.0], points, side=8)
    assert title == "guided: CFG w = 3" and cond.score.shape == (2, len(cond.points), 2)
    torch.testing.assert_close(guided.score, uncond.score + 3.0 * (cond.score - uncond.score), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cond.sigmas, torch.tensor([0.3, 2.0], dtype=torch.float64), rtol=1e-3, atol=0)
    assert not torch.allclose(cond.score, uncond.score, atol=1e-3)  # the class matters at these noise levels
    with pytest.raises(BadInputError, match="class"):
        latent_fields(latent, 10, 3.0, [1.0], points)


def test_interpolation_ends_on_the_two_points_and_slerp_keeps_the_norm(cloud):
    mix, x0 = cloud
    pair = x0[[0, 1]]
    found = inv.interpolate("heun", lambda batch: mix.denoise, pair, karras_sigmas(40, 0.002, 80.0).double(), 5)
    assert found.spherical.shape == found.straight.shape == (5, 2)
    for frames in (found.spherical, found.straight):  # both paths start and end on the two points' noises
        torch.testing.assert_close(frames[[0, -1]], pair, atol=1e-2, rtol=0)
    assert found.mid_norms[0] == pytest.approx(1.0) and found.mid_norms[1] <= 1.0  # the chord cuts inside


def test_the_measurement_plan_runs_the_step_rows_then_the_scale_rows_and_counts_them(cloud):
    mix, x0 = cloud
    plan = inv.measure_plan(["heun", "euler"], [16, 4], 3, True, ("dpmpp_2m", 8), [1.0, 0.0, 3.0])
    assert plan.samplers == ("heun", "euler") and plan.ladder == (4, 16)  # samplers as chosen, steps ascending
    assert plan.step_rows == 4 and plan.total == 7
    nfe = {name: SAMPLERS[name].nfe for name in ("heun", "euler", "dpmpp_2m")}
    per_image = 2 * (nfe["heun"](4) + nfe["heun"](16) + nfe["euler"](4) + nfe["euler"](16))  # up and back
    assert plan.evaluations() == 3 * 2 * (per_image + 3 * 2 * nfe["dpmpp_2m"](8))  # guided: both halves

    asked: list[float] = []

    def denoiser_at(w: float):
        asked.append(w)
        return mix.denoise

    grid = lambda k: karras_sigmas(k, 0.002, 80.0).double()  # noqa: E731
    rows = list(inv.measure(plan, denoiser_at, x0[:3], grid))
    order = [(r.sampler, r.steps, r.scale) for r in rows]
    assert order == [
        ("heun", 4, 1.0),
        ("heun", 16, 1.0),
        ("euler", 4, 1.0),
        ("euler", 16, 1.0),
        ("dpmpp_2m", 8, 1.0),
        ("dpmpp_2m", 8, 0.0),
        ("dpmpp_2m", 8, 3.0),
    ]
    assert asked == [1.0, 1.0, 0.0, 3.0]  # the step rows at w = 1, then each scale of the sweep
    by_steps, by_scale = plan.split(rows[:5])  # stopped after the first scale row
    assert by_steps == rows[:4] and by_scale == rows[4:5]
    assert rows[1].ode_error < rows[0].ode_error  # more steps, a closer round trip

    plain = inv.measure_plan(["ddim"], [10], 2, False)
    assert plain.total == 1 and plain.evaluations() == 2 * 2 * SAMPLERS["ddim"].nfe(10)  # 2 digits, up and back
    assert all(math.isnan(r.scale) for r in inv.measure(plain, denoiser_at, x0[:2], grid))
    for bad in (
        (["heun"], [], 2, False, None),
        ([], [10], 2, False, None),
        (["heun"], [10], 0, False, None),
        (["heun"], [10], 2, False, ("heun", 10)),
    ):  # no sweep without a class bound in
        with pytest.raises(BadInputError):
            inv.measure_plan(*bad, [1.0])
