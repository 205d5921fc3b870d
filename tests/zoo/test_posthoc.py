"""Post-hoc EMA of a real `python -m zoo train` run (zoo/posthoc.py): the snapshots every checkpoint carries, a
length rebuilt as a model, written as a folder that loads here and in diffusers, and files that lie refused."""

from __future__ import annotations

import json
import os

import pytest
import torch
from diffusers import UNet2DModel
from safetensors.torch import load_file, save_file

from core.errors import AtlasError
from core.runs.ours import read_run
from core.training.posthoc_ema import gamma_of
from zoo.__main__ import main as zoo_cli
from zoo.loaders import load_model
from zoo.local import local_entry
from zoo.posthoc import describe, posthoc_models, save_rebuilt, snapshots_in


def _folders(trained_run):
    return [f for _, f in read_run(trained_run / "run").checkpoints]


def test_every_checkpoint_carries_both_streams(trained_run):
    snaps = snapshots_in(_folders(trained_run), None)
    assert [(s.step, s.sigma_rel) for s in snaps] == [(2, 0.05), (2, 0.1), (4, 0.05), (4, 0.1), (6, 0.05), (6, 0.1)]
    assert snaps[0].gamma == pytest.approx(gamma_of(0.05))
    assert describe(snaps) == "2 streams (σ_rel 0.050, 0.100) at 3 steps (2-6)" and describe([]) == "none"
    state = load_file(snaps[-1].path)
    assert all(t.dtype == torch.float32 for t in state.values())  # full precision: coefficients can be large


def test_a_rebuilt_length_is_a_model_and_a_folder_that_loads_in_diffusers(trained_run, tmp_path):
    folders = _folders(trained_run)
    snaps = snapshots_in(folders, None)
    models = posthoc_models(folders[-1], snaps, [0.1, 0.07], roots=None)
    stream, _ = models[0.1]
    own = load_file(snaps[-1].path)  # the 0.10 stream at step 6: rebuilding its own length gives it back
    for name, value in stream.module.state_dict().items():
        torch.testing.assert_close(value, own[name], rtol=1e-5, atol=1e-6)
    between, fit = models[0.07]
    assert "σ_rel 0.070" in between.title and between.name != stream.name
    assert fit.coefficients.sum() == pytest.approx(1.0)
    x, sigma = torch.randn(2, 1, 28, 28), torch.full((2,), 2.0)
    assert torch.isfinite(between.denoiser(x, sigma, class_labels=torch.tensor([1, 2]))).all()
    out = save_rebuilt(between, 0.07, fit, folders[-1], tmp_path / "ema-0.070")
    theirs = UNet2DModel.from_pretrained(out)
    for name, value in between.module.state_dict().items():
        assert torch.equal(theirs.state_dict()[name], value), name
    again = load_model(local_entry(str(out), trusted=True))
    assert torch.equal(
        again.denoiser(x, sigma, class_labels=torch.tensor([1, 2])),
        between.denoiser(x, sigma, class_labels=torch.tensor([1, 2])),
    )


def test_snapshot_files_that_lie_or_leave_the_roots_are_refused(trained_run, tmp_path):
    folder = _folders(trained_run)[-1]
    state = load_file(folder / "phema-0.050.safetensors")
    bad = tmp_path / "checkpoints" / "step_0000006"
    bad.mkdir(parents=True)
    save_file(state, bad / "phema-0.050.safetensors", metadata={"sigma_rel": "0.05", "gamma": "3.0", "step": "6"})
    with pytest.raises(AtlasError, match="length, exponent and step that agree"):
        snapshots_in([bad], None)
    save_file(
        state,
        bad / "phema-0.050.safetensors",
        metadata={"sigma_rel": "0.05", "gamma": repr(gamma_of(0.05)), "step": "4"},
    )
    with pytest.raises(AtlasError, match="says step 4"):
        snapshots_in([bad], None)
    (bad / "phema-0.050.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(AtlasError, match="damaged"):
        snapshots_in([bad], None)
    os.remove(bad / "phema-0.050.safetensors")
    os.symlink(folder / "phema-0.050.safetensors", bad / "phema-0.050.safetensors")  # points out of the roots
    with pytest.raises(AtlasError):
        snapshots_in([bad], [tmp_path])


def test_the_command_line_writes_each_length_as_a_folder_that_compare_takes(trained_run, tmp_path, capsys):
    out = tmp_path / "phema"
    assert zoo_cli(["posthoc-ema", f"{trained_run}@6", "--lengths", "0.07,0.1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "σ_rel 0.07 (γ" in printed and str(out / "ema-0.070") in printed
    folders = _folders(trained_run)
    expected, _ = posthoc_models(folders[-1], snapshots_in(folders, None), [0.07], roots=None)[0.07]
    written = load_file(out / "ema-0.070" / "diffusion_pytorch_model.safetensors")
    for name, value in expected.module.state_dict().items():
        assert torch.equal(written[name], value), name
    atlas = json.loads((out / "ema-0.070" / "atlas.json").read_text())
    assert atlas["posthoc_ema_rebuilt"]["sigma_rel"] == 0.07 and atlas["posthoc_ema_rebuilt"]["step"] == 6
    rows = zoo_cli(
        [
            "compare",
            str(out / "ema-0.070"),
            str(out / "ema-0.100"),
            "--steps",
            "2",
            "--images",
            "2",
            "--out",
            str(tmp_path / "cmp"),
        ]
    )
    assert rows == 0 and (tmp_path / "cmp" / "grid.png").is_file()


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--lengths", "0.5"], "EMA length"),
        (["--lengths", "abc"], "not a list of numbers"),
        (["--lengths", ","], "at least one EMA length"),
    ],
)
def test_the_command_line_refuses_odd_lengths_with_a_sentence(trained_run, tmp_path, capsys, args, sentence):
    assert zoo_cli(["posthoc-ema", f"{trained_run}@6", *args, "--out", str(tmp_path / "o")]) == 2
    assert sentence in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_command_line_refuses_other_checkpoints_and_taken_folders(trained_run, tmp_path, capsys):
    assert zoo_cli(["posthoc-ema", f"{trained_run}@5", "--lengths", "0.07"]) == 2
    assert "no checkpoint at step 5" in capsys.readouterr().err
    assert zoo_cli(["posthoc-ema", str(trained_run), "--lengths", "0.07"]) == 2
    assert "is not RUN@STEP" in capsys.readouterr().err
    (tmp_path / "o" / "ema-0.070").mkdir(parents=True)
    assert zoo_cli(["posthoc-ema", f"{trained_run}@6", "--lengths", "0.07", "--out", str(tmp_path / "o")]) == 2
    assert "exists already" in capsys.readouterr().err
