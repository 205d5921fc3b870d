"""The threads policy at its entry points: `python -m zoo` and the benches run on core/device.threads_for's
threads ("script": all cores; a torchrun rank: its share; ATLAS_THREADS overrides) and record or print them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import zoo.__main__ as zoo_main
from core.device import threads_for
from tests.conftest import ROOT
from tests.helpers import tiny_pixel_recipe


def _threads_a_command_ran_on(monkeypatch) -> int:
    seen = []
    monkeypatch.setattr(zoo_main, "cmd_list", lambda reg: seen.append(torch.get_num_threads()) or 0)
    before = torch.get_num_threads()
    assert zoo_main.main(["list"]) == 0
    assert torch.get_num_threads() == before  # a caller in the same process gets its own count back
    return seen[0]


def test_the_command_line_runs_on_the_policy_threads(monkeypatch):
    for name in ("ATLAS_THREADS", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert _threads_a_command_ran_on(monkeypatch) == threads_for("script") == len(os.sched_getaffinity(0))
    monkeypatch.setenv("ATLAS_THREADS", "3")
    assert _threads_a_command_ran_on(monkeypatch) == 3
    monkeypatch.delenv("ATLAS_THREADS")
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)  # as torchrun starts each of its processes
    assert _threads_a_command_ran_on(monkeypatch) == threads_for("ddp-rank") == max(1, threads_for("script") // 2)


@pytest.mark.slow
def test_a_command_line_training_records_the_threads_it_ran_on(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        tiny_pixel_recipe(
            "tiny", schedule="linear", steps=1, batch_size=8, lr=0.003, prediction_type="epsilon", sample_every=1
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "ATLAS_THREADS": "1"}
    env.pop("ATLAS_MANIFEST", None)
    command = [sys.executable, "-m", "zoo", "train", str(recipe), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "out" / "run" / "config.json").read_text())
    assert config["hardware"]["threads"] == 1  # what the model card shows (zoo/cards.py)


@pytest.mark.slow
def test_benches_run_on_the_policy_threads(monkeypatch):
    monkeypatch.delenv("ATLAS_THREADS", raising=False)

    def bench_threads(**variables: str) -> str:
        env = {**os.environ, **variables}
        done = subprocess.run(
            [sys.executable, "-m", "bench.threads", "--policy"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    default = bench_threads()
    assert f"this bench process runs torch with {threads_for('script')} thread(s)" in default
    assert f"| script   | {threads_for('script')} " in default
    one = bench_threads(ATLAS_THREADS="1")
    assert "this bench process runs torch with 1 thread(s)" in one and "| server   | 1 " in one


def test_importing_a_bench_leaves_the_importers_threads(monkeypatch):
    monkeypatch.setenv("ATLAS_THREADS", "3")
    before = torch.get_num_threads()
    import bench.common

    assert not bench.common.running_a_bench() and torch.get_num_threads() == before


def _openmp_spin_count(command: list[str], **variables: str) -> str:
    """GOMP_SPINCOUNT as GNU OpenMP read it when torch loaded in `command` (0: workers sleep between ops)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"OMP_DISPLAY_ENV": "VERBOSE"} | variables
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return next(line.split("=")[1].strip() for line in done.stderr.splitlines() if "GOMP_SPINCOUNT" in line)


@pytest.mark.slow
def test_entry_points_load_torch_with_sleeping_openmp_workers():
    """core/__init__.py sets OMP_WAIT_POLICY=PASSIVE before torch loads; an operator's own value is kept."""
    assert _openmp_spin_count(["-m", "zoo", "list"]) == "'0'"
    assert _openmp_spin_count(["-m", "bench.threads", "--policy"]) == "'0'"
    assert _openmp_spin_count(["-m", "zoo", "list"], OMP_WAIT_POLICY="ACTIVE") != "'0'"
    assert _openmp_spin_count(["-c", "import torch"]) != "'0'"  # torch alone: libgomp's default, spinning
    # The server imports streamlit, then core (streamlit_app.py): streamlit must not load torch on its own.
    code = "import sys, streamlit; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False"
