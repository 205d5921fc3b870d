"""Objectives side by side and reflow (core/labs/objectives.py): the straightness measures on paths whose
answers are known, two objectives trained alike on the same data, and reflow straightening a flow model."""

from __future__ import annotations

import math

import pytest
import torch

from core.data.toy import TOY_SETS
from core.errors import BadInputError
from core.labs import objectives as ob
from core.labs.toy import ToyRun, ToySettings
from core.training.diffusion import paired_batches

BASE = ToySettings(width=64, depth=2, batch_size=256)


@pytest.fixture(scope="module")
def moons():
    return TOY_SETS["moons"].cloud(3000, seed=0)


def test_settings_for_each_objective():
    flow = ob.settings_for(BASE, "flow_prediction")
    assert (flow.prediction_type, flow.schedule, flow.width, flow.seed) == ("flow_prediction", "flow", 64, 0)
    eps = ob.settings_for(flow, "epsilon")
    assert (eps.prediction_type, eps.schedule) == ("epsilon", "linear")  # a diffusion objective leaves the flow path
    assert ob.settings_for(BASE, "sample").schedule == BASE.schedule
    with pytest.raises(BadInputError):
        ob.settings_for(BASE, "score")


def test_straightness_of_known_paths():
    tau = torch.linspace(1, 0, 33)
    start, end = torch.tensor([[2.0, 0.0]]), torch.tensor([[-2.0, 0.0]])
    line = ob.Paths(states=((1 - tau) * end[0][:, None] + tau * start[0][:, None]).T[:, None, :], tau=tau)
    assert ob.chord_ratio(line) == pytest.approx(1.0) and ob.curvature(line) == pytest.approx(0.0, abs=1e-9)
    angle = math.pi * (1 - tau)  # half a circle of radius 2 from (2, 0) to (-2, 0), at constant speed
    arc = ob.Paths(states=torch.stack([2 * torch.cos(angle), 2 * torch.sin(angle)], -1)[:, None, :], tau=tau)
    assert ob.chord_ratio(arc) == pytest.approx(2 / math.pi, rel=1e-3)
    # |chord rate - rate|^2 integrated: speed 2 pi against a chord rate of 4, at right angles on average
    assert ob.curvature(arc) == pytest.approx((2 * math.pi) ** 2 - 4**2, rel=1e-2)


def test_paired_batches_keep_each_point_with_its_noise():
    x0, noise = torch.arange(10.0)[:, None], -torch.arange(10.0)[:, None]
    x, cond = paired_batches(x0, noise)(32, torch.Generator().manual_seed(0))
    torch.testing.assert_close(cond["noise"], -x)
    with pytest.raises(BadInputError):
        paired_batches(x0, noise[:5])


def test_two_objectives_trained_alike_and_reflow_straightens_the_flow(moons):
    found = dict(
        (res.objective, (run, res))
        for run, res in ob.compare(moons, BASE, ["v_prediction", "flow_prediction"], 600, 600, names=lambda o: f"m-{o}")
    )
    (v_run, v), (flow_run, flow) = found["v_prediction"], found["flow_prediction"]
    assert v_run.settings.seed == flow_run.settings.seed and v_run.step == flow_run.step == 600
    assert (v_run.name, flow_run.schedule.path, v_run.schedule.path) == ("m-v_prediction", "flow", "vp")
    for res in (v, flow):
        assert list(res.sw2) == list(ob.NFE_LADDER) and res.sw2[32] < res.sw2[1] / 2
        assert 0 < res.chord_ratio <= 1 and res.curvature > 0 and res.samples[4].shape == (600, 2)
    pairs = ob.coupling(flow_run, 2000)
    straight = ob.measure(ob.reflow(flow_run, pairs, 600, name="m-reflow"), 600)
    assert straight.chord_ratio > max(flow.chord_ratio, 0.95) and straight.curvature < flow.curvature / 5
    assert straight.sw2[1] < flow.sw2[1] / 3  # one step now lands near the data
    with pytest.raises(BadInputError, match="flow-matching model"):
        ob.coupling(v_run, 500)


def test_a_reflow_run_trains_on_its_pairs_and_says_so(moons):
    run = ToyRun(moons, ob.settings_for(BASE, "flow_prediction"))
    eps = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    fresh = ToyRun(moons, run.settings, pairs=(eps * 0.1, eps))
    assert "500 (data, noise) pairs" in fresh.log.config["data"]["coupling"]
    x, cond = fresh.trainer.batches(8, torch.Generator().manual_seed(1))
    torch.testing.assert_close(x, 0.1 * cond["noise"])
