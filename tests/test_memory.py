"""The server's memory guard (core/memory.py): the limit it keeps under, what a job is learned to take, and a job
refused with a sentence when it would not fit, before it starts; pages keep drawing what they already have."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from core import memory
from core.training import budget
from tests.app.helpers import open_page
from tests.conftest import ROOT

MB = 2**20


@pytest.fixture(autouse=True)
def _fresh():
    memory.forget()
    yield
    memory.forget()


def test_the_limit_follows_the_environment_else_the_box(monkeypatch):
    monkeypatch.setenv("ATLAS_MEMORY_MB", "700")
    assert memory.limit_bytes() == 700 * MB
    monkeypatch.delenv("ATLAS_MEMORY_MB")
    assert memory.limit_bytes() == (memory.cgroup_limit_bytes() or memory.machine_bytes())
    assert memory.limit_bytes() <= memory.machine_bytes()
    assert memory.used_bytes() > 50 * MB  # this process holds torch at least


def test_a_job_learns_what_it_takes_and_the_next_one_is_refused_when_that_would_not_fit(monkeypatch):
    size = 240 * MB
    with budget.limited(kind="big job"):
        held = torch.ones(size // 4)  # touched: resident
        budget.check_deadline()  # where a job's loop checks in; sampled at most every 0.25 s ...
    del held
    learned = memory.expected_bytes("big job")
    assert learned >= 0.9 * size  # ... and on closing, so the rise is seen
    assert memory.expected_bytes("another job") == memory.FIRST_GUESS_BYTES  # nothing learned of it yet
    memory.record("small job", 2**20)
    assert memory.expected_bytes("small job") == memory.FLOOR_BYTES

    room = memory.used_bytes() + learned / 2  # room for half of what it took
    monkeypatch.setenv("ATLAS_MEMORY_MB", str(room / memory.SAFE_SHARE / MB))
    refused = r"short of memory just now \(\d[\d,]* MB of its \d[\d,]* MB"
    with pytest.raises(memory.MemoryLimitError, match=refused), budget.limited(kind="big job"):
        pytest.fail("a refused job must not start")
    with budget.limited(kind="small job"):  # what is known to be small still fits
        pass
    with budget.limited(), budget.limited(kind="big job"):  # part of a running job: admitted with it
        pass


def test_jobs_started_together_each_hold_what_they_will_take_until_they_end(monkeypatch):
    """Three visitors clicking at once: none has allocated yet when the next is admitted, so each running job
    holds its expected share, and the next must fit beside those."""
    memory.record("sweep", 100 * MB)
    room = memory.used_bytes() + 250 * MB  # room for two sweeps, not three
    monkeypatch.setenv("ATLAS_MEMORY_MB", str(room / memory.SAFE_SHARE / MB))
    first, second = memory.admit("sweep"), memory.admit("sweep")
    assert memory.held_bytes() == 200 * MB
    with pytest.raises(memory.MemoryLimitError, match=r"200 MB more held for the jobs running now"):
        memory.admit("sweep")
    first.close()  # a job ends: what it held is free again
    memory.admit("sweep").close()
    second.close()
    assert memory.held_bytes() == 0


def test_only_jobs_a_click_starts_are_refused(monkeypatch):
    monkeypatch.setenv("ATLAS_MEMORY_MB", "1")  # nothing fits
    with budget.limited():  # a page reading what it has cached (attempt without a kind)
        pass
    with pytest.raises(memory.MemoryLimitError), budget.limited(kind="sampling"):
        pass


def test_a_page_near_the_limit_refuses_generate_with_a_sentence_and_keeps_drawing(monkeypatch):
    at = open_page("samplers", monkeypatch)
    assert not at.exception
    monkeypatch.setenv("ATLAS_MEMORY_MB", "1")
    at.button(key="smp-go").click().run()
    assert not at.exception and not at.error
    said = [w.value for w in at.warning if "short of memory" in w.value]
    assert len(said) == 1 and "was not started" in said[0] and "try again in a minute" in said[0]
    assert not [c for c in at.caption if "seeds 0 to" in c.value]  # nothing was sampled
    monkeypatch.setenv("ATLAS_MEMORY_MB", "0")  # memory freed: the same click runs
    at.button(key="smp-go").click().run()
    assert not at.exception and not [w for w in at.warning if "short of memory" in w.value]


def _cgroup_root() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, _ = line.split(":", 2)
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            return Path("/sys/fs/cgroup")
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory")
    return None


def test_inside_a_memory_cgroup_the_limit_and_the_working_set_are_the_cgroups():
    """A real cgroup with a 600 MB limit, as a container has (needs root and a writable cgroup file system)."""
    root = _cgroup_root()
    box = root / f"atlas-test-{uuid.uuid4().hex[:8]}" if root else None
    try:
        box.mkdir()
    except (OSError, AttributeError):
        pytest.skip("no writable memory cgroup here (root and cgroupfs are needed)")
    try:
        v2 = (root / "cgroup.controllers").exists()
        (box / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(str(600 * MB))
        code = (
            "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()));"
            "from core import memory; before = memory.used_bytes(); held = b'1' * 200 * 2**20;"
            "print(memory.limit_bytes(), before, memory.used_bytes())"
        )
        shown = subprocess.run(
            ["sh", "-c", 'echo $$ > "$0"/cgroup.procs && exec "$@"', str(box), sys.executable, "-c", code, os.devnull],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "ATLAS_MEMORY_MB": ""},
            check=True,
        ).stdout.split()
        limit, before, after = (int(v) for v in shown)
        assert limit == 600 * MB
        assert before > 0 and 190 * MB < after - before < 230 * MB  # the cgroup's working set holds the 200 MB
    finally:
        box.rmdir()


def test_the_warm_up_imports_wait_for_first_use_under_a_small_memory_limit(monkeypatch):
    from ui.common import warmup

    monkeypatch.delenv("ATLAS_WARMUP", raising=False)
    monkeypatch.setenv("ATLAS_MEMORY_MB", "1024")  # Community Cloud's box
    assert not warmup.wanted()
    monkeypatch.setenv("ATLAS_WARMUP", "1")  # the operator's word wins
    assert warmup.wanted()
    monkeypatch.setenv("ATLAS_MEMORY_MB", "8192")
    monkeypatch.setenv("ATLAS_WARMUP", "0")
    assert not warmup.wanted()
    monkeypatch.delenv("ATLAS_WARMUP")
    assert warmup.wanted()


def test_a_refused_sweep_says_only_that_it_was_not_started(monkeypatch):
    at = open_page("guidance", monkeypatch)
    monkeypatch.setenv("ATLAS_MEMORY_MB", "1")
    at.button(key="gd-go").click().run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if "short of memory" in w.value]
    assert not [w.value for w in at.warning if "Stopped" in w.value]  # nothing was started, so nothing stopped
