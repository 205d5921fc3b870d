"""The server's memory guard (core/memory.py): the limit it keeps under, what a job is learned to take, and a job
refused with a sentence when it would not fit, before it starts; pages keep drawing what they already have."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from core import memory
from core.training import budget
from tests.app.helpers import captions, open_page
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

    room = memory.used_bytes() + learned / 2  # room for half of what it took, with no other job running
    monkeypatch.setenv("ATLAS_MEMORY_MB", str(room / memory.ALONE_SHARE / MB))
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
    room = memory.used_bytes() + 250 * MB  # room for two sweeps side by side, not three
    monkeypatch.setenv("ATLAS_MEMORY_MB", str(room / memory.SHARED_SHARE / MB))
    first, second = memory.admit("sweep"), memory.admit("sweep")
    assert memory.held_bytes() == 200 * MB
    with pytest.raises(memory.MemoryLimitError, match=r"200 MB more held for the jobs running now"):
        memory.admit("sweep")
    first.close()  # a job ends: what it held is free again
    memory.admit("sweep").close()
    second.close()
    assert memory.held_bytes() == 0


def _limit_for(monkeypatch, room: float, share: float) -> None:
    """ATLAS_MEMORY_MB such that `room` bytes beyond what is in use now fill `share` of the limit."""
    monkeypatch.setenv("ATLAS_MEMORY_MB", str((memory.used_bytes() + room) / share / MB))


def test_a_lone_job_may_use_more_of_the_limit_than_one_beside_others(monkeypatch):
    memory.record("sweep", 100 * MB)
    _limit_for(monkeypatch, 150 * MB, memory.ALONE_SHARE)  # one sweep fits alone, and a second beside it not
    assert memory.SHARED_SHARE < memory.ALONE_SHARE
    first = memory.admit("sweep")
    with pytest.raises(memory.MemoryLimitError):
        memory.admit("sweep")
    first.close()
    memory.admit("sweep").close()  # alone again: it fits


class EndsOnceWaitedFor:
    """A waiting job's `waiting` callback that keeps what it is told and, the third time (the job has waited
    through two polls), ends the running job from another thread: the order of events holds however busy the
    machine is."""

    def __init__(self, running: memory.Watch) -> None:
        self.running, self.said, self.ender = running, [], None

    def __call__(self, sentence: str) -> None:
        self.said.append(sentence)
        if len(self.said) == 3:
            self.ender = threading.Thread(target=self.running.close)
            self.ender.start()


def test_a_job_that_does_not_fit_waits_for_the_running_one_and_then_starts(monkeypatch):
    memory.record("sweep", 100 * MB)
    _limit_for(monkeypatch, 150 * MB, memory.SHARED_SHARE)  # one at a time
    waiting = EndsOnceWaitedFor(memory.admit("sweep"))
    started = memory.admit("sweep", waiting=waiting)  # blocks until the first has ended
    waiting.ender.join()
    assert len(waiting.said) >= 3  # it waited (and was told so) until the running job ended, not longer
    assert memory.held_bytes() == 100 * MB  # the second holds its share now, the first's is free
    assert all("Waiting for memory" in s and "1 job of other visitors running" in s for s in waiting.said)
    started.close()


def test_waiting_jobs_start_first_come_first_served(monkeypatch):
    memory.record("sweep", 100 * MB)
    _limit_for(monkeypatch, 150 * MB, memory.SHARED_SHARE)
    running, order = memory.admit("sweep"), []

    def wait(name: str) -> None:
        memory.admit("sweep", waiting=lambda _: None).close()
        order.append(name)

    first = threading.Thread(target=wait, args=("first",))
    first.start()
    while not memory._queue:
        time.sleep(0.01)
    second = threading.Thread(target=wait, args=("second",))
    second.start()
    while len(memory._queue) < 2:  # both wait, in this order
        time.sleep(0.01)
    running.close()
    first.join(10)
    second.join(10)
    assert order == ["first", "second"]


def test_a_stopped_wait_gives_up_its_place_and_a_later_job_starts(monkeypatch):
    memory.record("sweep", 100 * MB)
    _limit_for(monkeypatch, 150 * MB, memory.SHARED_SHARE)
    running = memory.admit("sweep")

    class Stopped(Exception):  # what Streamlit raises in a script whose Stop was pressed
        pass

    def stop(_: str) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        memory.admit("sweep", waiting=stop)
    assert not memory._queue and memory.held_bytes() == 100 * MB  # nothing left behind
    running.close()
    memory.admit("sweep", waiting=stop).close()  # fits at once: never told to wait


def test_a_wait_past_its_patience_is_refused_with_a_sentence(monkeypatch):
    memory.record("sweep", 100 * MB)
    _limit_for(monkeypatch, 150 * MB, memory.SHARED_SHARE)
    running = memory.admit("sweep")
    with pytest.raises(memory.MemoryLimitError, match=r"was not started.*It waited [12] s for the other visitors"):
        memory.admit("sweep", waiting=lambda _: None, patience=1.2)
    running.close()


def test_a_job_that_cannot_fit_even_alone_is_refused_at_once_without_waiting(monkeypatch):
    monkeypatch.setenv("ATLAS_MEMORY_MB", "1")
    said = []
    with pytest.raises(memory.MemoryLimitError):
        memory.admit("sweep", waiting=said.append)
    assert said == []  # nothing runs that could free memory: waiting could not help


def test_the_heap_is_capped_at_two_arenas_unless_the_operator_chose():
    """Eight threads that each allocate while the others live: glibc gives each its own heap (arena) unless
    capped. malloc_stats prints one 'Arena N:' block per heap."""
    code = (
        "import sys, threading, ctypes; import core\n"
        "barrier = threading.Barrier(8)\n"
        "def work():\n"
        "    block = bytearray(100_000); barrier.wait(); del block\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "ctypes.CDLL('libc.so.6').malloc_stats()\n"
    )

    def arenas(**env: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}
        )
        assert done.returncode == 0, done.stderr
        return done.stderr.count("Arena ")

    if memory._libc() is None:
        pytest.skip("not glibc")
    assert arenas() == memory.HEAP_ARENAS
    assert arenas(MALLOC_ARENA_MAX="8") > memory.HEAP_ARENAS  # the operator's word wins (and uncapped, more)


def test_a_generate_that_must_wait_shows_why_and_then_runs(monkeypatch):
    at = open_page("samplers", monkeypatch)
    memory.record("sampling", 100 * MB)
    running = memory.admit("a visitor's sweep")  # another visitor's job, holding the first guess
    _limit_for(monkeypatch, memory.FIRST_GUESS_BYTES + 50 * MB, memory.SHARED_SHARE)  # no room beside it
    from ui.common.widgets import _WaitNote

    show, ends = _WaitNote.show, EndsOnceWaitedFor(running)
    monkeypatch.setattr(_WaitNote, "show", lambda note, sentence: (ends(sentence), show(note, sentence)))
    at.button(key="smp-go").click().run()
    ends.ender.join()
    assert "Waiting for memory" in ends.said[0] and "**Stop** (top right) gives up" in ends.said[0]
    assert not at.exception and not at.error and not [w for w in at.warning if "short of memory" in w.value]
    assert [c for c in captions(at) if "seeds 0 to" in c]  # it ran once the other job had ended
    assert not [i for i in at.info if "Waiting for memory" in i.value]  # the note is gone once it started


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
    assert not [c for c in captions(at) if "seeds 0 to" in c]  # nothing was sampled
    monkeypatch.setenv("ATLAS_MEMORY_MB", "0")  # memory freed: the same click runs
    at.button(key="smp-go").click().run()
    assert not at.exception and not [w for w in at.warning if "short of memory" in w.value]
    assert [c for c in captions(at) if "seeds 0 to" in c]


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
