"""`zoo compare --metrics` on one process against the ranks of torchrun sharing its images (gloo, the CPU).

    python -m bench.compare_sharded [--model mnist-flow] [--images 1000] [--steps 20] [--repeats 1]

Each setting runs the whole command in a fresh process (or torchrun's processes), as a person at the shell would:
one rank on all the cores' threads, one rank on one thread, and two ranks on one thread each (the threads policy's
share for a rank, core/device.threads_for("ddp-rank"); set for each run through ATLAS_THREADS and OMP_NUM_THREADS,
and read back from results.json's hardware.threads, what rank 0 ran on). "command s" is the command's wall time
(starting Python and torch, loading, sampling, scoring, writing); "sampling s" the table's sample_seconds, the
sampling alone (on torchrun, rank 0's wall time of the shared sampling, the gather included); images/s is per
sampling second. "same grid" and "same metrics" compare each run's grid.png pixels and its FD-LeNet, precision,
recall, density and coverage with the first row's. On a machine shared with other jobs the seconds are noisy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import print_table

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ("fd_lenet", "fd_se", "precision", "recall", "density", "coverage")


def _run(ranks: int, threads: int, zoo_args: list[str], out: Path) -> tuple[float, dict]:
    """The command's wall seconds and its results.json."""
    env = {**os.environ, "ATLAS_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable]
    if ranks > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    start = time.perf_counter()
    done = subprocess.run(
        [*launcher, "-m", "zoo", *zoo_args, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{ranks} rank(s), {threads} thread(s) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return seconds, json.loads((out / "results.json").read_text())


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-flow")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting, taken in turn (medians)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    settings = [(1, cores), (1, 1), (2, max(1, cores // 2))]  # (ranks, threads per rank)
    zoo_args = ["compare", args.model, "--images", str(args.images), "--steps", str(args.steps), "--metrics"]
    runs: dict[tuple[int, int], list[tuple[float, dict, Path]]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            for ranks, threads in settings:  # in turn, so that a change in the machine's load hits every setting
                out = Path(tmp) / f"r{ranks}-t{threads}-{k}"
                seconds, results = _run(ranks, threads, zoo_args, out)
                runs[ranks, threads].append((seconds, results, out))
        first = runs[settings[0]][0]
        rows = []
        for ranks, threads in settings:
            done = runs[ranks, threads]
            row = done[0][1]["results"][0]
            sampling = statistics.median(r[1]["results"][0]["sample_seconds"] for r in done)
            rows.append(
                [
                    ranks,
                    done[0][1]["hardware"]["threads"],
                    statistics.median(r[0] for r in done),
                    sampling,
                    args.images / sampling,
                    all(np.array_equal(_pixels(r[2] / "grid.png"), _pixels(first[2] / "grid.png")) for r in done),
                    all(
                        [r[1]["results"][0][m] for m in MEASURES] == [first[1]["results"][0][m] for m in MEASURES]
                        for r in done
                    ),
                    row["fd_lenet"],
                ]
            )
    print_table(
        f"`zoo compare {args.model} --images {args.images} --steps {args.steps} --metrics` by ranks "
        f"({cores} cores; median of {args.repeats})",
        ["ranks", "threads per rank", "command s", "sampling s", "images/s", "same grid", "same metrics", "FD-LeNet"],
        rows,
    )


if __name__ == "__main__":
    main()
