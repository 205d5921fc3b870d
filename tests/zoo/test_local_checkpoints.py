"""Checkpoints on disk (zoo/local.py): folders written by diffusers' own save_pretrained, a checkpoint-N folder
laid out as diffusers' training examples write it, a run's checkpoints from a short real training, the bad
paths, and `python -m zoo compare` end to end."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from PIL import Image
from safetensors.torch import save_file

from core.errors import AtlasError
from core.runs.ours import read_run
from tests.helpers import tiny_unet
from zoo.__main__ import main as zoo_cli
from zoo.loaders import load_model
from zoo.local import local_entry


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """An allowed root (ATLAS_ALLOWED_ROOTS) and a folder outside every root."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ATLAS_ALLOWED_ROOTS", str(allowed))
    return allowed, outside


def _same_output(loaded, unet: UNet2DModel) -> None:
    x, t = torch.randn(2, unet.config.in_channels, 8, 8), torch.tensor([10.0, 500.0])
    torch.testing.assert_close(loaded.module(x, t).sample, unet(x, t).sample)


def test_a_unet_folder_with_its_scheduler_loads_with_the_exact_schedule(roots):
    allowed, _ = roots
    unet = tiny_unet(seed=1)
    unet.save_pretrained(allowed / "unet-folder")
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    scheduler.save_config(allowed / "unet-folder")
    entry = local_entry(str(allowed / "unet-folder"))
    assert entry.local and entry.prediction_type == "v_prediction" and entry.sample_shape == (3, 8, 8)
    loaded = load_model(entry)
    _same_output(loaded, unet)
    torch.testing.assert_close(loaded.schedule.alphas_cumprod.float(), scheduler.alphas_cumprod)  # theirs: float32
    assert loaded.entry.source.startswith("local: ")


def test_a_pipeline_folder_loads_its_unet_and_scheduler(roots):
    allowed, _ = roots
    unet = tiny_unet(seed=2)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(beta_schedule="linear")).save_pretrained(allowed / "pipe")
    entry = local_entry(str(allowed / "pipe"))
    assert entry.files == (
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    )
    loaded = load_model(entry)
    _same_output(loaded, unet)
    assert loaded.schedule.name == "linear" and loaded.denoiser.prediction_type == "epsilon"


class _RunsCode:
    """Unpickling this writes a marker file: the test that nothing in a checkpoint folder is unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile(marker) -> bytes:
    """A file that runs code when unpickled (written by torch.save, which pickles it: no weights inside)."""
    buffer = io.BytesIO()
    torch.save(_RunsCode(str(marker)), buffer)
    return buffer.getvalue()


def _training_checkpoint(out, marker) -> tuple[UNet2DModel, UNet2DModel]:
    """out/checkpoint-500 as diffusers' train_unconditional.py saves it through accelerate's save hooks: the
    model's save_pretrained into unet/, EMAModel.save_pretrained into unet_ema/ (whose config.json also holds the
    EMA's decay and step count), accelerate's optimizer and RNG states (pickles), and out/scheduler/ once the
    pipeline was saved at the end of an epoch."""
    raw, ema = tiny_unet(seed=3, channels=1), tiny_unet(seed=4, channels=1)
    raw.save_pretrained(out / "checkpoint-500" / "unet")
    EMAModel(ema.parameters(), decay=0.999, model_cls=UNet2DModel, model_config=ema.config).save_pretrained(
        out / "checkpoint-500" / "unet_ema"
    )
    assert "decay" in json.loads((out / "checkpoint-500" / "unet_ema" / "config.json").read_text())
    for name in ("optimizer.bin", "random_states_0.pkl", "scheduler.bin"):
        (out / "checkpoint-500" / name).write_bytes(_hostile(marker))
    DDPMScheduler(beta_schedule="linear", prediction_type="epsilon").save_config(out / "scheduler")
    return raw, ema


def test_a_training_checkpoint_takes_the_ema_weights_and_never_unpickles_its_states(roots, tmp_path):
    allowed, _ = roots
    marker = tmp_path / "unpickled"
    raw, ema = _training_checkpoint(allowed / "ddpm-mnist", marker)
    loaded = load_model(local_entry(str(allowed / "ddpm-mnist" / "checkpoint-500")))
    _same_output(loaded, ema)
    assert "EMA weights" in loaded.entry.description and loaded.schedule.name == "linear"
    raw_loaded = load_model(local_entry(str(allowed / "ddpm-mnist" / "checkpoint-500"), ema=False))
    _same_output(raw_loaded, raw)
    assert raw_loaded.name != loaded.name and loaded.title.endswith("(EMA)") and raw_loaded.title.endswith("(raw)")
    assert not marker.exists()


def test_a_safetensors_file_with_its_config_beside_it_loads(roots):
    allowed, _ = roots
    unet = tiny_unet(seed=5)
    unet.save_pretrained(allowed / "loose")
    (allowed / "loose" / "diffusion_pytorch_model.safetensors").rename(allowed / "loose" / "step-900.safetensors")
    entry = local_entry(str(allowed / "loose" / "step-900.safetensors"))
    assert "DDPM's defaults assumed" in entry.description  # no scheduler config: said, not hidden
    _same_output(load_model(entry), unet)


def test_bad_paths_get_a_sentence_and_nothing_outside_the_roots_is_read(roots, tmp_path):
    allowed, outside = roots
    tiny_unet(seed=6).save_pretrained(outside / "secret")
    with pytest.raises(AtlasError, match="reads checkpoints only from"):
        local_entry(str(outside / "secret"))
    with pytest.raises(AtlasError, match="reads checkpoints only from"):
        local_entry(str(allowed / ".." / "outside" / "secret"))
    (allowed / "link").symlink_to(outside / "secret")  # a symlink out of the root, named directly
    with pytest.raises(AtlasError, match="reads checkpoints only from"):
        local_entry(str(allowed / "link"))
    (allowed / "mixed").mkdir()  # a real folder whose weights are a symlink out of the root
    (allowed / "mixed" / "config.json").write_text((outside / "secret" / "config.json").read_text())
    (allowed / "mixed" / "diffusion_pytorch_model.safetensors").symlink_to(
        outside / "secret" / "diffusion_pytorch_model.safetensors"
    )
    with pytest.raises(AtlasError, match="leads outside the folders this app reads"):
        local_entry(str(allowed / "mixed"))
    secret = outside / "secret.json"  # a config or atlas.json that is a symlink out: refused, never read back
    secret.write_text(json.dumps({"_class_name": "SECRET-VALUE", "data": "SECRET-VALUE"}))
    for name in ("config.json", "atlas.json"):
        tiny_unet(seed=6).save_pretrained(allowed / name)
        (allowed / name / name).unlink(missing_ok=True)
        (allowed / name / name).symlink_to(secret)
        with pytest.raises(AtlasError, match="leads outside") as refused:
            local_entry(str(allowed / name))
        assert "SECRET" not in str(refused.value)
    tiny_unet(seed=6).save_pretrained(allowed / "sched")  # a scheduler config out of the roots is passed over
    (outside / "scheduler_config.json").write_text(json.dumps({"prediction_type": "v_prediction"}))
    (allowed / "sched" / "scheduler_config.json").symlink_to(outside / "scheduler_config.json")
    assert local_entry(str(allowed / "sched")).prediction_type == "epsilon"
    (allowed / "empty").mkdir()
    with pytest.raises(AtlasError, match="holds no diffusers model"):
        local_entry(str(allowed / "empty"))
    with pytest.raises(AtlasError, match="nothing at"):
        local_entry(str(allowed / "missing"))
    (allowed / "noconfig").mkdir()
    save_file({"w": torch.zeros(2)}, str(allowed / "noconfig" / "model.safetensors"))
    with pytest.raises(AtlasError, match=r"no config\.json beside it"):
        local_entry(str(allowed / "noconfig" / "model.safetensors"))
    for name in ("model.ckpt", "model.pkl", "model.pt"):
        (allowed / name).write_bytes(_hostile(tmp_path / "ran"))
        with pytest.raises(AtlasError, match="pickle-based file"):
            local_entry(str(allowed / name))
    assert not (tmp_path / "ran").exists()


def test_a_pickled_bin_and_a_wrong_shaped_state_dict_are_refused_at_load(roots, tmp_path):
    allowed, _ = roots
    unet = tiny_unet(seed=7)
    unet.save_pretrained(allowed / "pickled", safe_serialization=False)
    (allowed / "pickled" / "diffusion_pytorch_model.bin").write_bytes(_hostile(tmp_path / "ran"))
    with pytest.raises(AtlasError, match="not a plain state dict"):
        load_model(local_entry(str(allowed / "pickled")))
    assert not (tmp_path / "ran").exists()
    tiny_unet(seed=7).save_pretrained(allowed / "wrong")
    config = json.loads((allowed / "wrong" / "config.json").read_text())
    (allowed / "wrong" / "config.json").write_text(json.dumps({**config, "block_out_channels": [8, 16]}))
    with pytest.raises(AtlasError, match="do not belong together"):
        load_model(local_entry(str(allowed / "wrong")))


def test_a_local_folder_with_a_flow_matching_scheduler_loads_as_a_flow_model(roots):
    allowed, _ = roots
    flow = tiny_unet(seed=8)
    flow.save_pretrained(allowed / "flow")
    (allowed / "flow" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 2.0})
    )
    entry = local_entry(str(allowed / "flow"))
    loaded = load_model(entry)
    assert entry.prediction_type == "flow_prediction" and (loaded.schedule.path, loaded.schedule.shift) == ("flow", 2.0)
    x, sigma = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([1.0])
    with torch.no_grad():  # sigma = 1 is t = 1/2: D = x_t - t v(x_t, 500) with x_t = x / 2
        expected = x / 2 - 0.5 * flow(x / 2, torch.tensor([500.0])).sample
    torch.testing.assert_close(loaded.denoiser(x, sigma), expected, rtol=1e-5, atol=1e-5)


def test_training_writes_checkpoints_that_load_here_and_in_diffusers(trained_run):
    run = read_run(trained_run / "run")
    assert [s for s, _ in run.checkpoints] == [2, 4, 6] and [s for s, _ in run.samples] == [3, 6]
    last = run.checkpoints[-1][1]
    loaded = load_model(local_entry(str(last), trusted=True))
    final = load_model(local_entry(str(trained_run), trusted=True))  # the model the run ends with
    for (name, a), b in zip(loaded.module.state_dict().items(), final.module.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # the last checkpoint is the final EMA model
    assert loaded.entry.data == "mnist" and loaded.num_classes == 10 and loaded.null_label == 10
    assert loaded.entry.title == "tiny @ step 6" and loaded.schedule.name == "cosine"
    theirs = DDPMScheduler.from_pretrained(last)
    torch.testing.assert_close(loaded.schedule.alphas_cumprod.float(), theirs.alphas_cumprod)
    assert theirs.config.prediction_type == "v_prediction"
    unet = UNet2DModel.from_pretrained(last).eval()
    x, t, y = torch.randn(2, 1, 28, 28), torch.tensor([5.0, 50.0]), torch.tensor([1, 10])
    torch.testing.assert_close(loaded.module(x, t, class_labels=y).sample, unet(x, t, class_labels=y).sample)
    first = load_model(local_entry(str(run.checkpoints[0][1]), trusted=True))
    assert any(
        not torch.equal(a, b)
        for a, b in zip(first.module.state_dict().values(), loaded.module.state_dict().values(), strict=True)
    )


def test_zoo_compare_writes_the_grid_and_tables_end_to_end(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    pipe = tmp_path / "pipe"
    UNet2DModel.from_pretrained(trained_run / "run" / "checkpoints" / "step_0000006").save_pretrained(pipe / "unet")
    DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction").save_config(pipe / "scheduler")
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    args = [
        "compare",
        "mnist-ddpm-linear",
        f"{trained_run}@2",
        str(pipe),
        "--steps",
        "4",
        "--images",
        "6",
        "--metrics",
        "--class",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    assert zoo_cli(args) == 0
    printed = capsys.readouterr().out
    assert "FD-LeNet" in printed and "wrote" in printed
    assert re.search(r"FD-LeNet [\d.]+ ± [\d.]+, precision [\d.]+ ± [\d.]+, recall [\d.]+ ± [\d.]+, density", printed)
    with open(tmp_path / "out" / "results.csv", encoding="utf-8") as f:
        assert f.readline().startswith("# atlas: [")  # the settings' comment line (core/labs/provenance.py)
        rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in rows] == ["mnist-ddpm-linear", f"{trained_run}@2", str(pipe)]
    assert [r["nfe"] for r in rows] == ["4"] * 3 and all(float(r["images_per_second"]) > 0 for r in rows)
    assert rows[0]["class"] == "" and rows[1]["class"] == "2"  # the class goes only to conditional models
    assert all(float(r["fd_lenet"]) > 0 and r["samples"] == "6" for r in rows[:2])  # known to be MNIST models
    for row in rows[:2]:  # precision, recall, density and coverage with their SEs, of 6 samples against 6 digits
        assert 0 <= float(row["precision"]) <= 1 and 0 <= float(row["recall"]) <= 1
        assert 0 <= float(row["coverage"]) <= 1 and float(row["density"]) > 0
        assert all(float(row[f"{m}_se"]) >= 0 for m in ("precision", "recall", "density", "coverage"))
        assert (row["prdc_k"], row["prdc_n"]) == ("5", "6")
    assert rows[2]["fd_lenet"] == "" and rows[2]["precision"] == ""  # a folder that does not say what it was...
    assert (
        zoo_cli(
            [
                "compare",
                str(pipe),
                "--steps",
                "2",
                "--images",
                "4",
                "--metrics",
                "--mnist",
                "--out",
                str(tmp_path / "out2"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "FD-LeNet" in printed  # ...trained on is not scored, unless the person says its 1x28x28 images are digits
    assert "precision" not in printed  # 4 images: too few for balls through the 5th nearest neighbour
    assert json.loads((tmp_path / "out2" / "results.json").read_text())["results"][0]["precision"] is None
    assert json.loads((tmp_path / "out" / "results.json").read_text())["results"][2]["title"].endswith("pipe")
    with Image.open(tmp_path / "out" / "grid.png") as grid:
        assert grid.width > 3 * 3 * 28  # three panels of at least 3 images a row


def test_zoo_compare_says_what_is_wrong(trained_run, tmp_path, capsys):
    assert zoo_cli(["compare", f"{trained_run}@5", "--out", str(tmp_path / "o")]) == 2
    assert "no checkpoint at step 5; it has steps 2, 4, 6" in capsys.readouterr().err
    assert zoo_cli(["compare", "no-such-thing", "--out", str(tmp_path / "o")]) == 2
    assert "not a zoo model" in capsys.readouterr().err
    assert zoo_cli(["compare", "mnist-ddpm-linear", "--sampler", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "Unknown sampler" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written for a refused command


def test_compare_checks_out_first_and_leaves_nothing_when_refused(roots, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    allowed, _ = roots
    assert zoo_cli(["compare", "mnist-ddpm-linear", "--out", "/proc/atlas-out"]) == 2
    printed = capsys.readouterr()
    assert "--out /proc/atlas-out cannot be created" in printed.err and "loaded" not in printed.out  # nothing loaded
    tiny_unet(seed=6).save_pretrained(allowed / "broken")
    (allowed / "broken" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    out = tmp_path / "made" / "out"
    assert zoo_cli(["compare", str(allowed / "broken"), "--out", str(out)]) == 2
    assert "damaged or not a safetensors file" in capsys.readouterr().err
    assert not out.exists()  # the folder it made for the refused command is gone
    assert zoo_cli(["compare", "mnist-ddpm-linear", "mnist-lenet", "--out", str(out)]) == 2  # AttributeError before
    assert "mnist-lenet is a classifier model, not a diffusion model that samples images" in capsys.readouterr().err
    assert zoo_cli(["compare", f"{allowed}@-5", "--out", str(out)]) == 2  # "not a Hugging Face repo id" before
    assert "names step '-5'; a step is a whole number" in capsys.readouterr().err
    assert zoo_cli(["compare", "no/such-run@5", "--out", str(out)]) == 2
    assert "There is no run folder 'no/such-run' (RUN@STEP)" in capsys.readouterr().err
    assert zoo_cli(["compare", "//etc", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: /etc holds no diffusers model")
    assert not out.exists()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("sample_size", [], "images of"),
        ("sample_size", None, "images of"),
        ("sample_size", "32", "images of"),
        ("sample_size", 2048, "sides 4-512"),
        ("in_channels", "x", "images of"),
        ("num_class_embeds", "ten", "num_class_embeds"),
    ],
)
def test_a_malformed_or_oversized_config_gets_a_sentence(roots, field, value, says):
    allowed, _ = roots
    tiny_unet(seed=9).save_pretrained(allowed / "odd")
    config = json.loads((allowed / "odd" / "config.json").read_text())
    (allowed / "odd" / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(AtlasError, match=says):
        local_entry(str(allowed / "odd"))


@pytest.mark.parametrize(
    "scheduler", [{"num_train_timesteps": "abc"}, {"beta_start": "x"}, {"trained_betas": ["a"]}, {"beta_schedule": "?"}]
)
def test_a_malformed_scheduler_config_gets_a_sentence_at_load(roots, scheduler):
    allowed, _ = roots
    tiny_unet(seed=9).save_pretrained(allowed / "odd")
    (allowed / "odd" / "scheduler_config.json").write_text(json.dumps(scheduler))
    with pytest.raises(AtlasError):
        load_model(local_entry(str(allowed / "odd")))


def test_a_file_swapped_for_a_symlink_after_the_check_is_refused_at_load(roots):
    allowed, outside = roots
    unet = tiny_unet(seed=10)
    unet.save_pretrained(allowed / "swap")
    unet.save_pretrained(outside / "other")
    entry = local_entry(str(allowed / "swap"))
    weights = allowed / "swap" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    weights.symlink_to(outside / "other" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(AtlasError, match="leads outside the folders this app reads"):
        load_model(entry)
