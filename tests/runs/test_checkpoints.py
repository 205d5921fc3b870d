"""Checkpoints written as diffusers reads them, and the in-memory checkpoints of a page's training."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from core.data.toy import TOY_SETS
from core.diffusion.schedules import SCHEDULE_KINDS, make_schedule
from core.errors import BadInputError
from core.labs.toy import ToyRun, ToySettings, distances, run_sampler
from core.models.mlp import MLPConfig, build_mlp
from core.runs.archive import run_archive
from core.runs.checkpoints import scheduler_config
from core.runs.ours import read_run
from core.training.posthoc_ema import PowerStreams
from core.training.snapshots import WeightSnapshots
from zoo.loaders import schedule_from_scheduler_config


@pytest.mark.parametrize("kind", [k for k, spec in SCHEDULE_KINDS.items() if spec.path == "vp"])
def test_scheduler_config_is_read_back_exactly_here_and_by_diffusers(kind):
    ours = make_schedule(kind, 1000)
    config = scheduler_config(ours, "v_prediction")
    back, prediction = schedule_from_scheduler_config(config, "test")
    assert torch.equal(back.betas, ours.betas) and prediction == "v_prediction"
    assert back.name == (kind if kind != "quadratic" else "trained")  # diffusers has no name for quadratic
    theirs = DDPMScheduler.from_config(config)
    torch.testing.assert_close(theirs.alphas_cumprod, ours.alphas_cumprod.float())


def test_the_flow_path_is_written_as_diffusers_flow_matching_scheduler_with_its_shift():
    from diffusers import FlowMatchEulerDiscreteScheduler

    ours = make_schedule("flow", 1000, shift=3.0)
    config = scheduler_config(ours, "flow_prediction")
    back, prediction = schedule_from_scheduler_config(config, "test")
    assert prediction == "flow_prediction" and (back.path, back.shift) == ("flow", 3.0)
    assert torch.equal(back.betas, ours.betas)
    theirs = FlowMatchEulerDiscreteScheduler.from_config(config)
    assert (theirs.config.shift, theirs.config.num_train_timesteps) == (3.0, 1000)


class _Module(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))


def test_snapshots_keep_copies_spaced_out_and_thin_to_a_bounded_count():
    snaps, module = WeightSnapshots(10, {}, make_schedule("linear"), "epsilon", keep=4), _Module()
    for step in range(5, 101, 5):
        with torch.no_grad():
            module.w.fill_(step)
        snaps.offer(step, module)
    assert len(snaps.states) <= 4 and snaps.steps[-1] == 100  # the newest is always there
    assert snaps.listing == [(s, None) for s in snaps.steps]
    for step in snaps.steps:
        assert torch.equal(snaps.state(step)["w"], torch.full((3,), float(step)))  # copies, not views
    assert snaps.steps[0] <= 20  # still spanning the run


def test_a_toy_run_keeps_checkpoints_through_a_stop_and_samples_any_of_them():
    run = ToyRun(TOY_SETS["moons"].cloud(2000, seed=0), ToySettings())
    run.train(500)
    assert run.snapshots.steps == [250, 500] and run.log.checkpoints == [(250, None), (500, None)]

    def stop_at_620(trainer) -> None:  # Streamlit's Stop raises in the callback between two steps
        if trainer.step == 620:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.train(500, stop_at_620)
    assert run.snapshots.steps == [250, 500, 620] and run.step == 620
    early = run_sampler(run, "heun", 16, 2000, seed=3, at_step=250)
    now = run_sampler(run, "heun", 16, 2000, seed=3, at_step=620)
    assert torch.equal(now.samples, run_sampler(run, "heun", 16, 2000, seed=3).samples)  # 620 is the model now
    assert early.label["checkpoint"] == 250 and not torch.equal(early.samples, now.samples)
    assert distances(now, run)["swd"] < distances(early, run)["swd"]  # trained longer, closer to the data


def test_a_page_trainings_zip_is_a_run_folder_whose_checkpoints_rebuild_the_model(tmp_path):
    run = ToyRun(TOY_SETS["swiss_roll"].cloud(1000, seed=0), ToySettings(width=32), name="toy-7")
    run.train(300)
    with zipfile.ZipFile(io.BytesIO(run_archive(run.log))) as archive:
        archive.extractall(tmp_path / "runs")
    back = read_run(tmp_path / "runs" / "toy-7")
    assert not back.notes[:-1] and back.notes[-1] == "no samples folder"  # config and metrics read cleanly
    assert [r["step"] for r in back.metrics] == [r["step"] for r in run.trainer.metrics]
    assert [s for s, _ in back.checkpoints] == [250, 300]
    folder = back.checkpoints[0][1]
    config = json.loads((folder / "config.json").read_text())
    assert config.pop("_class_name") == "MLPDenoiser"  # MLPConfig.to_saved
    model = build_mlp(MLPConfig(**config))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    x, t = torch.randn(5, 2), torch.tensor([3.0, 100.0, 500.0, 800.0, 999.0])
    torch.testing.assert_close(model(x, t), run.denoiser(250).model(x, t))
    assert json.loads((folder / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"


def test_a_toy_run_keeps_post_hoc_ema_streams_that_rebuild_any_length_and_go_home_in_its_zip(tmp_path):
    """Each kept checkpoint holds both streams; a stream's own length at its checkpoint is that stream, another
    length lies between them; thinning drops a checkpoint's streams with it; the zip's folders carry them as
    phema files that zoo/posthoc.py reads and rebuilds alike."""
    from zoo.posthoc import snapshots_in

    run = ToyRun(TOY_SETS["moons"].cloud(2000, seed=0), ToySettings(width=32), name="toy-9")
    run.train(1000)
    kept = run.snapshots
    assert sorted(kept.streams) == kept.steps == [250, 500, 750, 1000]
    assert [r for r, _ in kept.streams[1000]] == [0.05, 0.1]
    own, fit = kept.posthoc_state(1000, 0.1)
    assert fit.profile_error < 1e-6
    for name, value in own.items():
        torch.testing.assert_close(value, kept.streams[1000][1][1][name], rtol=0, atol=1e-6)
    between, _ = kept.posthoc_state(1000, 0.07)
    w = max(between, key=lambda k: float((between[k] - own[k]).abs().max()))  # a weight training moved
    assert not torch.equal(between[w], own[w]) and not torch.equal(between[w], kept.streams[1000][0][1][w])
    a = run_sampler(run, "heun", 8, 500, seed=1, at_step=1000, ema_length=0.07)
    b = run_sampler(run, "heun", 8, 500, seed=1, at_step=1000, ema_length=0.2)
    assert a.label["ema_length"] == 0.07 and not torch.equal(a.samples, b.samples)
    with pytest.raises(BadInputError, match="EMA length"):
        run.denoiser(1000, ema_length=0.4)
    with zipfile.ZipFile(io.BytesIO(run_archive(run.log))) as archive:
        archive.extractall(tmp_path / "runs")
    folders = [f for _, f in read_run(tmp_path / "runs" / "toy-9").checkpoints]
    snaps = snapshots_in(folders, None)
    assert [(s.step, s.sigma_rel) for s in snaps][-2:] == [(1000, 0.05), (1000, 0.1)]
    assert torch.equal(load_file(str(snaps[-1].path))[w], kept.streams[1000][1][1][w])


def test_thinning_drops_a_checkpoints_streams_with_it():
    snaps, module = WeightSnapshots(10, {}, make_schedule("linear"), "epsilon", keep=4), _Module()
    streams = PowerStreams(module, [0.05, 0.1])
    for step in range(5, 101, 5):
        with torch.no_grad():
            module.w.fill_(step)
        streams.update(module, step)
        snaps.offer(step, module, streams)
    assert sorted(snaps.streams) == snaps.steps
    with pytest.raises(BadInputError, match="no post-hoc EMA snapshots"):
        WeightSnapshots(10, {}, make_schedule("linear"), "epsilon").posthoc_state(10, 0.1)
