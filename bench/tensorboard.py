"""Reading TensorBoard event files: seconds and peak memory for each file, and for reading it again after it grew.

    python -m bench.tensorboard [--big] [--code DIR] [--keep DIR]

Writes, with torch's SummaryWriter, scalar files of 50,000 and 650,000 steps (one "train/loss" a step, about
32 MB for the second; --big adds 6.5 million steps, about 325 MB, framed here: see write_scalars_framed) and a
file of 30 images of 2048x2048 pixels (about 4 MB each as PNG), then reads each in a fresh process: the first
read, a re-read after 1,000 more records were appended (read again from scratch where the code has no
TensorBoardReader), and for the images the page's animation of them (ui/training_logs: read_grid, then
gif_bytes of at most 50 frames). Each stage's peak is the process's high-water mark (VmHWM, reset before the
stage through /proc/self/clear_refs) over its RSS when the stage began. --code DIR reads with the `core` package in
DIR (e.g. `git archive main core | tar -x -C DIR`), to compare with another version; --keep DIR writes the files
there and keeps them for a later run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import print_table

ROOT = Path(__file__).resolve().parents[1]
APPEND = 1_000

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [p for p in sys.argv[3:] if p]
from core.runs import tensorboard as tb
from bench.tensorboard import append_scalars, append_images
from core.data.images import gif_bytes
from core.runs.record import evenly
from ui.training_logs.figures import read_grid

def status(field):
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) / 1024

def stage(name, fn):
    # the stage's seconds (CPU, wall) and its peak RSS over the RSS it started from
    Path("/proc/self/clear_refs").write_text("5")  # resets the high-water mark (VmHWM) to the RSS now
    before, cpu, wall = status("VmRSS"), time.process_time(), time.perf_counter()
    result = fn()
    out[name] = [time.process_time() - cpu, time.perf_counter() - wall, status("VmHWM") - before]
    return result

folder, kind = Path(sys.argv[1]), sys.argv[2]
out = {}
reader = tb.TensorBoardReader(folder) if hasattr(tb, "TensorBoardReader") else None
read = reader.read if reader is not None else lambda: tb.read_tensorboard_run(folder)
run = stage("read", read)
out |= {"points": len(run.metrics), "notes": run.notes}
if kind == "images":
    stage("animate", lambda: gif_bytes([read_grid(p) for _, p in evenly(run.samples, 50)], duration_ms=500))
(append_images if kind == "images" else append_scalars)(folder)
run = stage("reread", read)
out["points_after"] = len(run.metrics)
print(json.dumps(out))
"""


def _event_file(folder: Path) -> Path:
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def write_scalars(folder: Path, steps: int) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for step in range(steps):
        writer.add_scalar("train/loss", 1.0 / (1 + step) + 0.01 * np.sin(step), step)
    writer.close()


def write_scalars_framed(folder: Path, steps: int, block: int = 100_000) -> None:
    """The same log as write_scalars, each event built by torch's summary code but framed here, block by block
    (checksums from core/runs/crc32c.py, which tensorboard's own reader checks again when --code reads it):
    SummaryWriter would take a quarter of an hour over 6.5 million steps."""
    import struct

    from tensorboard.compat.proto.event_pb2 import Event
    from torch.utils.tensorboard.summary import scalar

    from core.runs.crc32c import masked_crc32c

    with open(folder / f"events.out.tfevents.{int(1e9)}.bench", "wb") as f:
        for first in range(0, steps, block):
            datas = [Event(wall_time=1e9, file_version="brain.Event:2").SerializeToString()] if first == 0 else []
            datas += [
                Event(wall_time=1e9 + s, step=s, summary=scalar("train/loss", 1.0 / (1 + s))).SerializeToString()
                for s in range(first, min(steps, first + block))
            ]
            heads = b"".join(struct.pack("<Q", len(d)) for d in datas)
            head_crc = masked_crc32c(
                np.frombuffer(heads, np.uint8), np.arange(0, len(heads), 8), np.full(len(datas), 8)
            )
            body = b"".join(datas)
            sizes = np.array([len(d) for d in datas])
            data_crc = masked_crc32c(np.frombuffer(body, np.uint8), np.cumsum(sizes) - sizes, sizes)
            f.write(
                b"".join(
                    heads[8 * k : 8 * k + 8] + struct.pack("<I", int(hc)) + d + struct.pack("<I", int(dc))
                    for k, (d, hc, dc) in enumerate(zip(datas, head_crc, data_crc, strict=True))
                )
            )


def _grid(seed: int, side: int = 2048) -> np.ndarray:
    """A sample grid: 8x8 tiles of smooth random pictures with a little noise, so that PNG compresses it about as
    much as a model's samples (some MB a grid)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(side // 8, side // 8, 3)).astype(np.int16)
    noise = rng.integers(-1, 2, size=(side, side, 3)) * (rng.random((side, side, 1)) < 0.5)
    noisy = np.kron(coarse, np.ones((8, 8, 1), dtype=np.int16)) + noise
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_images(folder: Path, count: int = 30) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for k in range(count):
        writer.add_scalar("train/loss", 1.0 / (1 + k), k * 100)
        writer.add_image("samples", _grid(k), k * 100, dataformats="HWC")
    writer.close()


def _append(folder: Path, events: list) -> None:
    """Append events to the folder's event file, as its writer would (TensorBoard's own record writer)."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    with open(_event_file(folder), "ab") as f:
        writer = RecordWriter(f)
        for event in events:
            writer.write(event.SerializeToString())
        writer.flush()


def _last_step(folder: Path) -> int:
    return int(json.loads((folder / "steps.json").read_text()))


def append_scalars(folder: Path) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from torch.utils.tensorboard.summary import scalar

    first = _last_step(folder) + 1
    _append(
        folder,
        [Event(wall_time=1e9 + s, step=s, summary=scalar("train/loss", 0.5)) for s in range(first, first + APPEND)],
    )


def append_images(folder: Path) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from torch.utils.tensorboard.summary import image

    step = _last_step(folder) + 100
    _append(folder, [Event(wall_time=2e9, step=step, summary=image("samples", _grid(99), dataformats="HWC"))])


def _stage(got: list[float] | None) -> str:
    """A stage's "CPU s / wall s, +peak MB"."""
    return "-" if got is None else f"{got[0]:.2f} / {got[1]:.2f} s, +{got[2]:.0f} MB"


def measure(folder: Path, kind: str, code: str) -> dict:
    """One case read in a fresh process on a fresh copy of its file (the child appends to it)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / folder.name
        copy.mkdir()
        for path in folder.iterdir():
            shutil.copyfile(path, copy / path.name)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(copy), kind, code, str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add a 6.5 million step file (about 325 MB)")
    parser.add_argument("--code", default="", help="a folder holding the `core` package to read with")
    parser.add_argument("--keep", default="", help="write the files here (kept) or reuse them")
    args = parser.parse_args()
    cases = [("scalars", 50_000), ("scalars", 650_000)] + ([("scalars", 6_500_000)] if args.big else [])
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(args.keep or scratch)
        rows = []
        for kind, steps in [*cases, ("images", 30)]:
            folder = home / f"{kind}_{steps}"
            if not (folder / "steps.json").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                if kind == "images":
                    write_images(folder, steps)
                elif steps > 1_000_000:
                    write_scalars_framed(folder, steps)
                else:
                    write_scalars(folder, steps)
                last = (steps - 1) * 100 if kind == "images" else steps - 1
                (folder / "steps.json").write_text(json.dumps(last))
            size = _event_file(folder).stat().st_size / 2**20
            got = measure(folder, kind, str(Path(args.code).resolve()) if args.code else "")
            rows.append(
                [
                    f"{steps:,} {'images 2048x2048' if kind == 'images' else 'steps'}",
                    round(size, 1),
                    *(_stage(got.get(name)) for name in ("read", "animate", "reread")),
                    f"{got['points']:,} -> {got['points_after']:,}",
                ]
            )
            print(f"{rows[-1][0]}: {got['notes']}", file=sys.stderr)
    header = ["file", "MB", "read", "animate (the page's GIF)", "re-read after appending", "records"]
    print("\nEach stage: CPU / wall seconds (wall counts the machine's other processes too), peak RSS over its start")
    print_table(f"TensorBoard reading ({args.code or 'this tree'})", header, rows)


if __name__ == "__main__":
    main()
