"""What hostile or careless input costs the shared server: time and memory of each case, refused or handled.

    python -m bench.hostile [--timeout 60]

Each case runs in a fresh process through the code the app runs (the same functions the pages call): its input
is built first, then the table gives the wall time of handling it and how far the process's peak memory (RSS)
rose above what it held before.
`--code OLD_CHECKOUT` runs the same cases on an older checkout's code: the "before" column.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _stroke(k: int) -> dict:
    return {"type": "path", "path": [["M", k % 500, 5], *(["L", k % 500, j] for j in range(6, 40))]}


def case_csv_wide_header():
    from core.data.points_csv import points_from_csv

    raw = ",".join(f"c{i}" for i in range(100_000)).encode() + b"\n1,2\n"
    return lambda: points_from_csv(raw)


def case_csv_one_long_line():
    from core.data.points_csv import points_from_csv

    raw = b"1," * 300_000
    return lambda: points_from_csv(raw)


def case_csv_1mb_header():
    from core.data.points_csv import points_from_csv

    raw = b"x" * 2**20 + b",y\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(100))
    return lambda: points_from_csv(raw)


def case_thin_png():
    from core.data.images import read_upload

    raw = _png(1, 39_999_999, zlib.compress(b"\x00" * 16))
    return lambda: read_upload(raw, "thin.png")


def case_short_stream_png():
    from core.data.images import read_upload

    raw = _png(6000, 6000, zlib.compress(b"\x00" * 6001 * 3))
    return lambda: read_upload(raw, "short.png")


def case_drawing_20k_strokes():
    from core.data.drawing import canvas_strokes

    drawing = {"objects": [_stroke(k) for k in range(20_000)]}
    return lambda: canvas_strokes(drawing)


def case_drawing_5k_strokes():
    from core.data.drawing import canvas_strokes

    drawing = {"objects": [_stroke(k) for k in range(5_000)]}
    return lambda: canvas_strokes(drawing)


def case_drawing_forged():
    from core.data.drawing import canvas_strokes

    return lambda: canvas_strokes({"objects": [{"type": "path", "path": [["M", 0, 0], ["Q", 5]]}]})


def case_compare_checkpoints_max():
    from core.labs.compare import plan_work
    from core.labs.samplers import SamplerSettings
    from ui.common.cache import registry

    models = [m for m in registry().models.values() if m.family == "pixel"][:3]

    def sample_at_the_limits() -> None:
        plan_work(models, ["heun"], [1000], SamplerSettings(batch=36))  # what Sample at the page's limits asks for
        raise SystemExit("accepted: about 18 minutes of a core (issue figure)")

    return sample_at_the_limits


def case_hub_config_2_5b():
    from diffusers import UNet2DModel  # noqa: F401 (imported once per server, as by its warm-up)

    from tests.hub_server import FakeHub
    from zoo.loaders import hub_unet_entry, load_model

    hub = FakeHub().start()
    os.environ |= {"HF_ENDPOINT": hub.url, "HF_HOME": tempfile.mkdtemp()}
    blocks = {"down_block_types": ["DownBlock2D"] * 2, "up_block_types": ["UpBlock2D"] * 2}
    config = {"_class_name": "UNet2DModel", "layers_per_block": 4, "block_out_channels": [2048, 2048], **blocks}
    hub.add("evil/huge", "config.json", json.dumps(config).encode())
    hub.add("evil/huge", "diffusion_pytorch_model.safetensors", b"\x00" * 16)
    return lambda: load_model(hub_unet_entry("evil/huge"))


def _allowed_root() -> Path:
    """This process's allowed root for local checkpoints (ATLAS_ALLOWED_ROOTS), made on first use."""
    if not os.environ.get("ATLAS_ALLOWED_ROOTS"):
        os.environ["ATLAS_ALLOWED_ROOTS"] = tempfile.mkdtemp()
    return Path(os.environ["ATLAS_ALLOWED_ROOTS"])


def _unet_folder(folder: Path, seed: int = 0, **change):
    """A tiny diffusers UNet saved into `folder` (save_pretrained), its config changed by `change`; the model."""
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8,),
        down_block_types=("DownBlock2D",),
        up_block_types=("UpBlock2D",),
        norm_num_groups=4,
        add_attention=False,
    )
    unet.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text()) | change
    (folder / "config.json").write_text(json.dumps(config))
    return unet


def case_local_symlink_race():
    import threading

    import torch

    from zoo.loaders import load_model
    from zoo.local import local_entry

    inside, outside, model = _allowed_root() / "store", Path(tempfile.mkdtemp()) / "secret", _allowed_root() / "m"
    _unet_folder(inside, seed=1)
    secret = _unet_folder(outside, seed=2).state_dict()
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    (model / "unet").symlink_to(inside)

    def race() -> None:
        stop, outcomes = threading.Event(), {"read the outside weights": 0, "loaded": 0, "refused": 0, "OSError": 0}

        def swap() -> None:  # an atomic rename: the name is always there, pointing in or out
            k = 0
            while not stop.is_set():
                k += 1
                (model / "spare").symlink_to([inside, outside][k % 2])
                os.replace(model / "spare", model / "unet")

        sys.setswitchinterval(1e-4)
        threading.Thread(target=swap, daemon=True).start()
        for _ in range(200):
            try:
                state = load_model(local_entry(str(model))).module.state_dict()
                outcomes[
                    "read the outside weights"
                    if torch.equal(state["conv_in.weight"], secret["conv_in.weight"])
                    else "loaded"
                ] += 1
            except OSError:
                outcomes["OSError"] += 1
            except Exception:
                outcomes["refused"] += 1
        stop.set()
        raise SystemExit("200 loads: " + ", ".join(f"{v} {k}" for k, v in outcomes.items()))

    return race


def case_local_deep_config():
    from zoo.local import local_entry

    folder = _allowed_root() / "deep"
    _unet_folder(folder)
    (folder / "config.json").write_text('{"a": ' * 200_000 + "1" + "}" * 200_000)
    return lambda: local_entry(str(folder))


def case_local_negative_width():
    from zoo.loaders import load_model
    from zoo.local import local_entry

    folder = _allowed_root() / "negative"
    _unet_folder(folder, block_out_channels=[-16])
    return lambda: load_model(local_entry(str(folder)))


def case_local_million_betas():
    from zoo.loaders import load_model
    from zoo.local import local_entry

    folder = _allowed_root() / "betas"
    _unet_folder(folder)
    (folder / "scheduler_config.json").write_text(json.dumps({"trained_betas": [0.01] * 1_000_000}))

    def load() -> None:
        model = load_model(local_entry(str(folder)))
        raise SystemExit(f"accepted: T = {model.schedule.num_steps:,}")

    return load


def case_cli_compare_a_classifier():
    from zoo.__main__ import main

    os.environ["HF_HUB_OFFLINE"] = "1"
    out = Path(tempfile.mkdtemp()) / "out"

    def run() -> None:
        status = main(
            ["compare", "mnist-ddpm-linear", "mnist-lenet", "--steps", "2", "--images", "1", "--out", str(out)]
        )
        raise SystemExit(f"exit status {status}")

    return run


CASES = {
    "CSV: first row of 100,000 fields (689 KB)": case_csv_wide_header,
    "CSV: '1,' 300,000 times on one line (0.6 MB)": case_csv_one_long_line,
    "CSV: a 1 MB header": case_csv_1mb_header,
    "Upload: 68-byte PNG declaring 1 x 39,999,999": case_thin_png,
    "Upload: 6000 x 6000 PNG whose pixel stream ends early": case_short_stream_png,
    "Drawing: 20,000 strokes": case_drawing_20k_strokes,
    "Drawing: 5,000 strokes (the cap), converted": case_drawing_5k_strokes,
    "Drawing: a forged Q command": case_drawing_forged,
    "Compare checkpoints: Heun x 36 images x 1,000 steps x 3": case_compare_checkpoints_max,
    "Hub: 1 KB config for 2.5 billion parameters": case_hub_config_2_5b,
    "Local: unet/ swapped in and out of the roots, 200 loads": case_local_symlink_race,
    "Local: config.json nested 200,000 deep": case_local_deep_config,
    "Local: block_out_channels = [-16]": case_local_negative_width,
    "Local: 1,000,000 trained_betas": case_local_million_betas,
    "CLI: compare mnist-ddpm-linear mnist-lenet": case_cli_compare_a_classifier,
}

CHILD = """
import importlib.util, resource, sys, time
sys.path.insert(0, {code!r})  # the checkout whose code handles the input
import torch, numpy, pandas  # what the server holds anyway
spec = importlib.util.spec_from_file_location("hostile_cases", {bench!r})
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
CASES = cases.CASES
work = CASES[{name!r}]()  # the input is built before the clock starts
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tic = time.perf_counter()
try:
    work()
    outcome = "accepted"
except SystemExit as e:
    outcome = str(e)
except Exception as e:
    outcome = f"{{type(e).__name__}}: {{str(e)[:90]}}"
seconds = time.perf_counter() - tic
print(repr((seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, outcome)))
"""


def run(name: str, timeout: float, code_root: Path) -> list[object]:
    code = CHILD.format(code=str(code_root), bench=__file__, name=name)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [name, f"> {timeout:.0f}", "-", "still running at the time limit"]
    try:
        seconds, grew_mb, outcome = eval(done.stdout.strip().splitlines()[-1])  # our own child's repr
    except (IndexError, SyntaxError):
        return [name, "-", "-", f"the process failed: {done.stderr.strip().splitlines()[-1:]}"]
    return [name, round(seconds, 3), round(grew_mb), outcome]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run the cases on (before/after)")
    parser.add_argument("--only", default="", help="run only the cases whose name holds this text")
    args = parser.parse_args()
    rows = [run(name, args.timeout, args.code.resolve()) for name in CASES if args.only in name]
    from bench.common import print_table

    print_table("Hostile input: cost to the server", ["case", "s", "peak RSS +MB", "outcome"], rows)


if __name__ == "__main__":
    main()
