"""Local folders built or changed to get around the allowed roots (core/paths.open_inside, as zoo/paths raises
its refusals): a symlink swapped between a file inside and one outside while models load, a FIFO, a folder;
configs built to break the parser or the builder; and messages that show paths relative to their root, never
the server's."""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest
import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

from core.errors import AtlasError
from core.jsondata import MAX_DEPTH
from core.paths import shown
from zoo.loaders import load_model
from zoo.local import local_entry
from zoo.paths import open_inside

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """An allowed root (ATLAS_ALLOWED_ROOTS) and a folder outside every root."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ATLAS_ALLOWED_ROOTS", str(allowed))
    return allowed, outside


def _unet(seed: int) -> UNet2DModel:
    """A one-block UNet2DModel (about 1,500 numbers): cheap to build two hundred times."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=4,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(4,),
        down_block_types=("DownBlock2D",),
        up_block_types=("UpBlock2D",),
        norm_num_groups=2,
        attention_head_dim=None,
        add_attention=False,
    )


def test_a_symlink_swapped_in_and_out_while_models_load_never_leads_outside(roots):
    """A thread flips a pipeline's unet/ between a folder inside the root and one outside (mostly an atomic
    rename, now and then unlink and symlink, so the name is also missing at times) while the page's two
    steps run again and again: the check (local_entry) and the load. Before, the check resolved the path
    again after checking it, and the load then read the outside weights, or raised OSError."""
    allowed, outside = roots
    inside_unet, outside_unet = _unet(1), _unet(2)
    inside_unet.save_pretrained(allowed / "store" / "unet")
    outside_unet.save_pretrained(outside / "store" / "unet")
    (allowed / "m").mkdir()
    (allowed / "m" / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    link, spare = allowed / "m" / "unet", allowed / "m" / "spare"
    targets = [allowed / "store" / "unet", outside / "store" / "unet"]
    link.symlink_to(targets[0])
    stop = threading.Event()

    def swap() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            if k % 16:
                spare.symlink_to(targets[k % 2])
                os.replace(spare, link)
            else:
                link.unlink()
                link.symlink_to(targets[k % 2])

    marker = {n: t for n, t in outside_unet.state_dict().items()}
    loaded, refused = 0, []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # hand the GIL over often, so the swaps land inside the loads
    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for _ in range(200):
            try:
                model = load_model(local_entry(str(allowed / "m")))
            except AtlasError as e:
                refused.append(str(e))
                continue
            state = model.module.state_dict()
            assert not all(torch.equal(state[n], t) for n, t in marker.items()), "read the outside weights"
            assert all(torch.equal(state[n], t) for n, t in inside_unet.state_dict().items())
            loaded += 1
    finally:
        stop.set()
        swapper.join()
        sys.setswitchinterval(interval)
    assert loaded + len(refused) == 200 and refused  # every failure is the zoo's own error (no OSError)...
    assert all(str(outside) not in m and str(allowed) not in m and m.endswith(".") for m in refused)  # ...a sentence


def test_open_inside_reads_only_regular_files_inside_the_roots(roots, tmp_path):
    allowed, outside = roots
    (allowed / "a").mkdir()
    (allowed / "a" / "in.json").write_text("{}")
    (outside / "secret.json").write_text('{"secret": 1}')
    (allowed / "a" / "near.json").symlink_to(allowed / "a" / "in.json")  # a link inside the root: followed
    (allowed / "a" / "far.json").symlink_to(outside / "secret.json")
    (allowed / "door").symlink_to(outside)  # a folder link out of the root
    os.mkfifo(allowed / "a" / "fifo.json")  # opening it for reading would wait for a writer forever
    root = (allowed.resolve(),)
    for name in ("in.json", "near.json"):
        with open_inside(allowed / "a" / name, root) as handle:
            assert handle.read() == b"{}"
    for path, says in [
        (allowed / "a" / "far.json", "allowed/a/far.json leads outside the folders this app reads"),
        (allowed / "door" / "secret.json", "allowed/door/secret.json leads outside"),
        (allowed / "a" / "missing.json", "allowed/a/missing.json is not there"),
        (allowed / "a", "allowed/a is not a regular file"),
        (allowed, "allowed is a folder"),
    ]:
        with pytest.raises(AtlasError, match=says) as refused:
            open_inside(path, root)
        assert str(tmp_path) not in str(refused.value)
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: _refusal(allowed / "a" / "fifo.json", root, result), daemon=True)
    reader.start()
    reader.join(60)  # a guard against a hang, not a timing: the refusal comes at once
    assert not reader.is_alive() and "is not a regular file" in str(result[0])
    with open_inside(outside / "secret.json", None) as handle:  # no roots: the command line's own files
        assert b"secret" in handle.read()


def _refusal(path, roots, into: list) -> None:
    try:
        open_inside(path, roots).close()
    except AtlasError as e:
        into.append(e)


def test_paths_are_shown_relative_to_their_root(roots, tmp_path):
    allowed, outside = roots
    root = (allowed.resolve(),)
    assert shown(allowed.resolve() / "x" / "config.json", root) == "allowed/x/config.json"
    assert shown("//etc") == "/etc" and shown("/srv/../etc/passwd") == "/etc/passwd"
    with pytest.raises(AtlasError, match="reads checkpoints only from runs, allowed") as refused:
        local_entry(str(outside))
    assert str(tmp_path) not in str(refused.value)
    _unet(3).save_pretrained(allowed / "folder")
    entry = local_entry(str(allowed / "folder"))
    assert entry.source == "local: allowed/folder" and entry.title == "allowed/folder"
    save_file({"w": torch.zeros(3)}, str(allowed / "folder" / WEIGHTS))  # the wrong weights: named, not located
    with pytest.raises(AtlasError, match="allowed/folder") as refused:
        load_model(entry)
    assert str(tmp_path) not in str(refused.value)


def _config(folder, **change) -> None:
    _unet(4).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))


def test_configs_built_to_break_the_parser_or_the_builder_get_a_sentence(roots):
    allowed, _ = roots
    _config(allowed / "deep")
    depth = 200_000  # RecursionError before (a traceback in the CLI, an error box on the page)
    (allowed / "deep" / "config.json").write_text('{"a": ' * depth + "1" + "}" * depth)
    with pytest.raises(AtlasError, match=f"config.json nests deeper than {MAX_DEPTH} levels"):
        local_entry(str(allowed / "deep"))
    (allowed / "deep" / "config.json").write_text('{"a": ' * 40 + "1" + "}" * 40)  # parses, yet no config
    with pytest.raises(AtlasError, match="nests deeper"):
        local_entry(str(allowed / "deep"))
    _config(allowed / "negative", block_out_channels=[-16])  # a RuntimeError in torch before, past the size check
    with pytest.raises(AtlasError, match=r"block_out_channels must be whole numbers from 1 to 65,536 \(got .-16.\)"):
        local_entry(str(allowed / "negative"))
    _config(allowed / "fraction", norm_num_groups=1.5)
    with pytest.raises(AtlasError, match="norm_num_groups must be whole numbers"):
        local_entry(str(allowed / "fraction"))


@pytest.mark.parametrize(
    ("scheduler", "says"),
    [
        ({"trained_betas": [0.01] * 100_001}, r"trained_betas must list 2 to 100,000 numbers \(it holds 100,001"),
        ({"trained_betas": {"a": 1}}, r"trained_betas must list 2 to 100,000 numbers \(it holds dict"),
        ({"trained_betas": [[0.1, 0.2], [0.1, 0.2]]}, "trained_betas is not a list of numbers"),
        ({"num_train_timesteps": 100_001}, "num_train_timesteps must be a whole number from 2 to 100,000"),
        ({"prediction_type": {"x": 1}}, "prediction_type .*x.* is not one of epsilon, sample, v_prediction"),
    ],
    ids=["100,001 betas (1,000,000 made T = 1,000,000)", "betas in a dict", "betas in rows", "T", "prediction"],
)
def test_a_scheduler_config_declares_at_most_100_000_training_steps(roots, scheduler, says):
    allowed, _ = roots
    _unet(5).save_pretrained(allowed / "odd")
    (allowed / "odd" / "scheduler_config.json").write_text(json.dumps(scheduler))
    with pytest.raises(AtlasError, match=says):  # when the folder is named, before any weight is read
        local_entry(str(allowed / "odd"))
