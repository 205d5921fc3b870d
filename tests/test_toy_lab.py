"""The toy lab's pipeline (train -> sample -> distances -> fields) and its figures, without Streamlit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.toy import get_toy_set
from core.errors import BadInputError
from core.toy_lab import ToyRun, ToySettings, fields
from core.toy_sampling import distances, escaped_share, run_sampler
from ui.toy_figures import _arrows_2d, cloud_figure, field_figure, loss_figure, samples_figure, trajectory_figure


@pytest.fixture(scope="module")
def run2d() -> ToyRun:
    cloud = get_toy_set("eight_gaussians").cloud(2000, seed=0, params={"radius": 10.0, "std": 0.5})
    run = ToyRun(cloud, ToySettings(T=200, width=32, batch_size=256, seed=1))
    run.train(150)
    return run


@pytest.fixture(scope="module")
def run3d() -> ToyRun:
    run = ToyRun(get_toy_set("helix").cloud(1000, seed=0), ToySettings(T=100, width=16, depth=1, batch_size=128))
    run.train(20)
    return run


def test_a_run_keeps_its_data_settings_and_a_run_record(run2d):
    rec = run2d.record
    assert rec["kind"] == "toy" and rec["metrics"] is run2d.trainer.metrics and run2d.step == 150
    assert rec["config"]["settings"]["T"] == 200 and rec["config"]["model"]["width"] == 32
    assert rec["config"]["train"]["prediction_type"] == "v_prediction"
    assert set(rec["metrics"][-1]) == {"step", "loss", "lr", "seconds", "grad_norm"}
    assert run2d.target_step == 150 and torch.get_num_threads() >= 1


def test_sampling_returns_samples_and_a_trajectory_in_data_units(run2d):
    r = run_sampler(run2d, "euler", 20, 500, seed=0, path_points=100)
    assert r.samples.shape == (500, 2) and r.path.shape == (21, 100, 2) and r.path_x0.shape == (21, 100, 2)
    assert torch.equal(r.path[-1], r.samples[:100]) and float(r.sigmas[-1]) == 0 and float(r.times[0]) > 0.9
    assert torch.all(r.times[1:] <= r.times[:-1]) and r.nfe == 20 and r.seconds > 0
    # The first frame is the VP state y = x / sqrt(1 + sigma^2): unit noise in standardised units.
    first = run2d.standardizer.transform(r.path[0])
    assert float(first.std()) == pytest.approx(1.0, abs=0.15)
    # Trained for a moment on 8 Gaussians of radius 10: the samples already sit near the ring.
    assert float(r.samples.norm(dim=1).median()) == pytest.approx(10, abs=2.5)
    again = run_sampler(run2d, "euler", 20, 500, seed=0, path_points=100)
    assert torch.equal(again.samples, r.samples)


def test_long_runs_keep_at_most_61_frames_and_options_reach_the_sampler(run2d):
    r = run_sampler(run2d, "ddim", 150, 200, path_points=50, eta=1.0)
    assert r.path.shape[0] == 61 and r.label["eta"] == 1.0
    with pytest.raises(BadInputError):
        run_sampler(run2d, "ddim", 10, 200, colour=1.0)
    with pytest.raises(BadInputError):
        run_sampler(run2d, "euler", 500, 200)  # more steps than T
    with pytest.raises(BadInputError):
        run_sampler(run2d, "euler", 10, 200_000)


def test_distances_have_a_floor_and_the_clip_keeps_samples_in_the_box(run2d):
    r = run_sampler(run2d, "euler", 20, 1000)
    d = distances(r, run2d)
    assert set(d) == {"swd", "mmd", "swd_floor", "mmd_floor"}
    assert 0 < d["swd_floor"] < d["swd"] < 1.0 and d["mmd_floor"] < d["mmd"]
    clipped = run_sampler(run2d, "euler", 20, 1000, clip=True)
    assert escaped_share(clipped, run2d) == 0.0 and clipped.label["clip"]


def test_mixture_data_sets_get_the_exact_field_beside_the_learned_one(run2d, run3d):
    times = torch.linspace(1.0, 0.05, 4, dtype=torch.float64)
    learned, exact = fields(run2d, times, 12)
    assert exact is not None and learned.velocity.shape == exact.velocity.shape == (4, len(learned.points), 2)
    # The grid is in data units and spans the ring of radius 10.
    assert float(learned.points.abs().max()) > 10
    err = (learned - exact).velocity.norm(dim=-1).mean() / exact.velocity.norm(dim=-1).mean()
    assert float(err) < 1.0  # a rough model, but pointing the right way on average
    learned3, exact3 = fields(run3d, times, 5)
    assert exact3 is None and learned3.velocity.shape[-1] == 3


def test_the_step_cap_and_a_fresh_cloud_without_a_law():
    cloud = get_toy_set("moons").cloud(100)
    run = ToyRun(cloud, ToySettings(T=50, width=16, depth=1, batch_size=32))
    with pytest.raises(BadInputError, match="at most"):
        run.train(10**6)
    no_law = type(cloud)(cloud.points, "csv:x", "upload")
    run = ToyRun(no_law, ToySettings(T=50, width=16, depth=1, batch_size=32))
    run.train(5)
    d = distances(run_sampler(run, "euler", 5, 100), run)
    assert d["swd_floor"] >= 0


# ---- figures ----------------------------------------------------------------------------------------------


def test_figures_build_for_2d_and_3d(run2d, run3d):
    for run in (run2d, run3d):
        dim = run.dim
        r = run_sampler(run, "euler", 10, 300, path_points=50)
        traj = trajectory_figure(r.path, r.sigmas, r.times, run.cloud.points, r.path_x0)
        assert len(traj.frames) == 11 and len(traj.frames[0].data) == 2
        assert traj.layout.sliders[0].steps[0].label.startswith("u=1.000")
        assert ("scene" in traj.layout and traj.layout.scene.aspectmode == "manual") if dim == 3 else True
        assert samples_figure(r.samples, run.cloud.points).data[1].x.shape == (300,)
        assert cloud_figure(run.cloud.points).data[0].type == ("scatter3d" if dim == 3 else "scattergl")
        learned, exact = fields(run, torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64), 6 if dim == 3 else 10)
        panels = [("Learned", learned)] + ([("Exact", exact), ("Diff", learned - exact)] if exact else [])
        for kind in ("velocity", "score"):
            fig = field_figure(panels, kind, run.cloud.points)
            assert len(fig.frames) == 3 and len(fig.frames[0].data) == len(panels)
            assert fig.frames[0].data[0].type == ("cone" if dim == 3 else "scatter")
    assert len(loss_figure(run2d.trainer.metrics).data[1].y) == len(run2d.trainer.metrics)


def test_2d_arrows_start_at_the_points_and_end_at_point_plus_vector():
    pts, vec = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])
    x, y = _arrows_2d(pts, vec)
    assert len(x) == 14 and np.isnan(x[2]) and (x[0], y[0], x[1], y[1]) == (0, 0, 1, 0)
    assert (x[8], y[8]) == (1, 3)  # second arrow's tip
