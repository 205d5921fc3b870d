"""`torchrun --nproc_per_node 2 -m zoo compare ... --metrics` on the CPU (gloo): the ranks share the chunks of images
(core/labs/compare.sample_sharded) and rank 0 alone scores and writes, one grid and one table equal to one
process's but for the timings and the `ranks` column; a bad argument stops both ranks with one sentence each.

Each rank runs in a folder of its own (rank0/, rank1/) with a relative --out, so what rank 1 would write lands
apart from rank 0's files, and each rank's stdout and stderr go to files of their own (rankN.out, rankN.err)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from zoo.__main__ import main as zoo_cli

TIMINGS = {"load_seconds", "sample_seconds", "images_per_second", "ranks"}
# every rank in its own folder, its output in files of its own; "$0" is this Python, "$@" the zoo's arguments
IN_ITS_OWN_FOLDER = (
    'mkdir -p "rank$RANK" && cd "rank$RANK" && exec "$0" -m zoo "$@" >"../rank$RANK.out" 2>"../rank$RANK.err"'
)


def _torchrun(cwd, zoo_args: list[str]) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m zoo ZOO_ARGS`, each rank in cwd/rankN/ (a free port, gloo)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python"]
    command += ["sh", "-c", IN_ITS_OWN_FOLDER, sys.executable, *zoo_args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the ranks run outside the repository's folder
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _said(cwd, rank: int) -> tuple[str, str]:
    return (cwd / f"rank{rank}.out").read_text(), (cwd / f"rank{rank}.err").read_text()


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())))


@pytest.mark.slow
def test_two_ranks_draw_the_same_images_and_rank_0_alone_scores_and_writes(app_env, tmp_path):
    args = ["--manifest", str(app_env), "compare", "tiny-uncond", "tiny-cond", "--steps", "2", "--images", "250"]
    args += ["--metrics", "--seed", "3"]
    single = tmp_path / "single"
    assert zoo_cli([*args, "--out", str(single)]) == 0

    done = _torchrun(tmp_path, [*args, "--out", "out"])  # 3 chunks: 0 and 2 (50 images) on rank 0, 1 on rank 1
    rank0, rank1 = _said(tmp_path, 0), _said(tmp_path, 1)
    assert done.returncode == 0, done.stderr[-3000:] + rank0[1][-3000:] + rank1[1][-3000:]
    assert rank0[0].count("wrote out/grid.png") == 1 and rank0[0].count("FD-LeNet") == 2
    assert "error" not in rank0[1] + rank1[1]
    assert rank1 == ("", "")  # rank 1 printed nothing...
    assert list((tmp_path / "rank1").iterdir()) == []  # ...and wrote nothing
    sharded = tmp_path / "rank0" / "out"
    assert sorted(p.name for p in sharded.iterdir()) == ["grid.png", "results.csv", "results.json"]

    assert np.array_equal(_pixels(sharded / "grid.png"), _pixels(single / "grid.png"))  # bit for bit
    one, two = (json.loads((folder / "results.json").read_text()) for folder in (single, sharded))
    assert [r["ranks"] for r in one["results"]] == [1, 1] and [r["ranks"] for r in two["results"]] == [2, 2]
    assert one["hardware"]["world_size"] == 1 and two["hardware"]["world_size"] == 2
    for a, b in zip(one["results"], two["results"], strict=True):
        assert a["samples"] == b["samples"] == 250 and a["prdc_n"] == 250
        assert all(a[m] is not None for m in ("fd_lenet", "fd_se", "precision", "recall", "density", "coverage"))
        assert {k: v for k, v in a.items() if k not in TIMINGS} == {k: v for k, v in b.items() if k not in TIMINGS}
        assert b["sample_seconds"] > 0 and b["images_per_second"] == pytest.approx(250 / b["sample_seconds"], 1e-2)
    assert one["atlas"] == two["atlas"]  # the same records: `--from` reruns either the same way


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bad", "sentence"),
    [
        (["--images", "0"], "--images must be 1-10,000 and --steps at least 1."),  # refused before the ranks join
        (["--steps", "5000"], "tiny-uncond allows at most"),  # refused by each rank once it loaded the model
        (["--out", "blocker/out"], "--out blocker/out cannot be created"),  # rank 0's alone: rank 1 stops with it
    ],
)
def test_a_bad_argument_stops_both_ranks_with_the_same_sentence(app_env, tmp_path, bad, sentence):
    (tmp_path / "rank0").mkdir()
    (tmp_path / "rank0" / "blocker").write_text("a file where rank 0's --out needs a folder")
    args = ["--manifest", str(app_env), "compare", "tiny-uncond", "--steps", "2", "--images", "4", "--out", "o"]
    done = _torchrun(tmp_path, [*args, *bad])  # a hang would end in subprocess.TimeoutExpired
    assert done.returncode != 0
    for rank in (0, 1):
        printed, errors = _said(tmp_path, rank)
        assert errors.count(sentence) == 1 and errors.startswith("error: ") and "Traceback" not in errors
        assert "wrote" not in printed and (rank == 0 or printed == "")  # rank 0 may have said what it loaded
    assert not (tmp_path / "rank0" / "o").exists() and not (tmp_path / "rank1" / "o").exists()
