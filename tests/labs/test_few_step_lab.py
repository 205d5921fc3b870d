"""The few-step lab (core/labs/few_step.py): every method beside its teacher on two moons, the couplings' pairs,
the one-step maps against a mixture's exact flow map, and minibatch OT against the closed-form Gaussian OT map."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.data.toy import TOY_SETS
from core.diffusion import couplings, flow_map
from core.errors import BadInputError
from core.labs import few_step as fs
from core.labs.toy import ToyRun, ToySettings

BASE = ToySettings(width=64, batch_size=256)
STEPS = 400


@pytest.fixture(scope="module")
def moons():
    torch.set_num_threads(1)
    cloud = TOY_SETS["moons"].cloud(2000, seed=0)
    seen: list[tuple[str, int]] = []
    found = {
        r.method: r
        for _, r in fs.compare_few_step(
            cloud, BASE, list(fs.CHOOSABLE), STEPS, 1000, callback=lambda m, tr: seen.append((m, tr.step))
        )
    }
    return found, seen


def test_every_method_beats_the_teachers_one_step_or_says_it_does_not(moons):
    found, seen = moons
    assert list(found) == [fs.TEACHER, *fs.CHOOSABLE]  # the teacher first, then each in the order asked
    assert {m for m, _ in seen} == set(found) and (fs.TEACHER, STEPS) in seen
    said = " ".join(fs.verdicts(list(found.values())))
    for method, result in found.items():
        assert list(result.sw2) == [1, 2, 4, 8] and result.steps == STEPS and result.seconds > 0
        assert result.reference["sw2"].high < 0.2 and set(result.reference) == {"sw2", "mmd"}
        if method != fs.TEACHER:
            beaten = fs.beats_teacher(result, found[fs.TEACHER])
            assert beaten != (result.title in said), method
    # these learn one step well at this budget (CT needs thousands of steps: it says so)
    for method in ("consistency_distillation", "shortcut", "meanflow", fs.COUPLED, fs.REFLOW):
        assert fs.beats_teacher(found[method], found[fs.TEACHER]), (method, found[method].sw2)
    assert found[fs.TEACHER].sw2[1] > 3 * found[fs.TEACHER].sw2[8]  # the teacher's one Euler step is poor


def test_paths_and_crossings_where_the_method_has_them(moons):
    found, _ = moons
    teacher, coupled, reflowed = found[fs.TEACHER], found[fs.COUPLED], found[fs.REFLOW]
    for r in (teacher, coupled, reflowed):
        assert 0 < r.chord_ratio <= 1 and r.curvature >= 0 and r.pairs[0].shape == (fs.KEEP_PAIRS, 2)
    assert found["shortcut"].chord_ratio is None and found["shortcut"].crossings is None
    # minibatch OT pairs and reflow's pairs cross far less than independent ones, and their flows run straighter
    assert coupled.crossings < teacher.crossings / 3 and reflowed.crossings < teacher.crossings / 3
    assert coupled.chord_ratio > teacher.chord_ratio and reflowed.chord_ratio > teacher.chord_ratio


def test_coupled_batches_pair_each_chunk_by_its_coupling():
    data = torch.randn(500, 2) * 2 + 3
    draw = lambda m, g: data[torch.randint(len(data), (m,), generator=g)]  # noqa: E731
    x0, cond = fs.coupled_batches(draw, "minibatch_ot", chunk=64)(256, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    same_x0, same_eps = draw(256, g), torch.randn(256, 2, generator=g)  # what the batch drew, before pairing
    assert torch.equal(x0, same_x0)
    for k in range(0, 256, 64):  # each chunk's noise is a permutation of its own chunk's, with the least cost
        chunk, drawn = cond["noise"][k : k + 64], same_eps[k : k + 64]
        assert torch.equal(chunk.sort(0).values, drawn.sort(0).values)
        assert couplings.transport_cost(x0[k : k + 64], chunk) < couplings.transport_cost(x0[k : k + 64], drawn)
    with pytest.raises(BadInputError, match="Unknown coupling"):
        fs.coupled_batches(draw, "greedy")


@pytest.fixture(scope="module")
def gaussians():
    torch.set_num_threads(1)
    cloud = TOY_SETS["eight_gaussians"].cloud(2000, seed=0)
    (_, teacher), *_ = fs.compare_few_step(cloud, BASE, [], 300, 500)
    return cloud, fs.exact_mixture(cloud), teacher


def test_the_exact_consistency_function_has_no_error_and_one_euler_step_a_large_one(gaussians):
    _, mixture, teacher = gaussians
    exact = replace(teacher, one_step=lambda x, t: flow_map.consistency_function(mixture, x, t, tol=1e-9))
    for t in (0.3, 0.9):
        assert fs.error_field(mixture, exact, t, resolution=16).mean < 1e-4
    field = fs.error_field(mixture, teacher, 0.9, resolution=24)
    assert field.mean > 0.5 and field.weighted_mean > 0.5 and field.error.shape == (24, 24)
    x_lo, x_hi, _, _ = fs.field_box(mixture, 0.9)
    assert x_lo < float(mixture.means[:, 0].min()) * 0.1 - 2 and x_hi > 2  # the noisy marginal fits in it


def test_meanflow_error_is_zero_for_the_exact_average_velocity(gaussians):
    _, mixture, teacher = gaussians
    with pytest.raises(BadInputError, match="Only MeanFlow"):
        fs.meanflow_error(mixture, teacher, 0.5)
    exact = replace(teacher, average=lambda z, r, t: flow_map.average_velocity(mixture, z, r, t, tol=1e-9))
    assert fs.meanflow_error(mixture, exact, 0.7, n=200) < 1e-4
    velocity = flow_map.velocity(mixture)  # the instantaneous velocity is not the average over [0, t]
    instant = replace(teacher, average=lambda z, r, t: velocity(z.double(), t.double()))
    assert fs.meanflow_error(mixture, instant, 0.7, n=200) > 0.1


def test_only_a_2d_isotropic_mixture_has_an_exact_law():
    assert fs.exact_mixture(TOY_SETS["moons"].cloud(500)) is None
    assert fs.exact_mixture(TOY_SETS["mixture_3d"].cloud(500)) is None
    mix = fs.exact_mixture(TOY_SETS["eight_gaussians"].cloud(500))
    assert mix is not None and mix.dim == 2


def test_the_one_step_map_of_minibatch_ot_flow_matching_nears_the_ot_map_as_the_batch_grows():
    errors = [p.map_error for p in fs.gaussian_study(sizes=(1, 16, 128), steps=200)]
    assert errors[0] > 2 * errors[1] > 0 and errors[1] > errors[2], errors
    assert errors[0] > 0.8  # the independent coupling's one step lands near the mean, far from the OT map
    rows = fs.study_rows(sizes=(1, 16, 128))
    assert [r.batch for r in rows] == [1, 16, 128] and rows[0].mean_map_error > rows[2].mean_map_error


def test_the_labs_own_flow_model_teaches_without_training_again():
    cloud = TOY_SETS["moons"].cloud(1000, seed=0)
    lab = ToyRun(cloud, replace(BASE, prediction_type="flow_prediction"), name="toy-7")  # on the lab's VP schedule
    lab.train(100)
    assert fs.can_teach(lab, cloud) and not fs.can_teach(lab, TOY_SETS["circles"].cloud(1000))
    (run, teacher), (_, shortcut) = fs.compare_few_step(cloud, BASE, ["shortcut"], 50, 300, teacher=lab)
    assert run is None and teacher.name == "toy-7" and teacher.steps == 100 and lab.step == 100
    assert shortcut.steps == 50 and 0 < teacher.chord_ratio <= 1


def test_3d_data_trains_and_measures_without_crossings():
    cloud = TOY_SETS["torus"].cloud(1000, seed=0)
    found = [r for _, r in fs.compare_few_step(cloud, BASE, [fs.COUPLED, "meanflow"], 20, 200)]
    assert [r.method for r in found] == [fs.TEACHER, fs.COUPLED, "meanflow"]
    assert all(r.crossings is None and r.samples[1].shape[1] == 3 for r in found)
    assert found[1].chord_ratio is not None and fs.exact_mixture(cloud) is None


def test_bad_settings_get_sentences():
    cloud = TOY_SETS["moons"].cloud(500)
    for kwargs, message in [
        ({"chosen": ["reflow", "reflow"]}, "different methods"),
        ({"chosen": ["dreams"]}, "different methods"),
        ({"coupling": "greedy"}, "Unknown coupling"),
        ({"steps": 5}, "10 to"),
        ({"n": 50}, "Measure 100"),
    ]:
        args = {"chosen": ["shortcut"], "steps": 100, "n": 500, **kwargs}
        with pytest.raises(BadInputError, match=message):
            next(fs.compare_few_step(cloud, BASE, args.pop("chosen"), args.pop("steps"), args.pop("n"), **args))
    diffusion = ToyRun(cloud, BASE)  # a v-prediction model cannot teach
    assert not fs.can_teach(diffusion, cloud)
    with pytest.raises(BadInputError, match="flow-matching model"):
        next(fs.compare_few_step(cloud, BASE, ["shortcut"], 100, 500, teacher=diffusion))
    with pytest.raises(BadInputError, match="OT batches"):
        next(fs.gaussian_study(sizes=(4096,)))
