"""Where work runs: the device choice and the threads policy (core/device.threads_for)."""

from __future__ import annotations

import os
import queue
import threading

import pytest
import torch

from core.device import (
    THREAD_ROLES,
    configure_server_threads,
    describe_device,
    pick_device,
    threads_for,
    torch_threads,
    use_threads,
)


def test_device_choice_and_description(monkeypatch):
    monkeypatch.setenv("ATLAS_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    info = describe_device(torch.device("cpu"))
    assert info.kind == "cpu" and info.torch_version == torch.__version__ and info.threads >= 1
    assert "CPU" in info.summary


def test_the_threads_policy_per_role(monkeypatch):
    monkeypatch.delenv("ATLAS_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    cores = (1, 2, 4, 16)
    assert [threads_for("server", c) for c in cores] == [1, 1, 3, 15]  # a core left to the browser and server
    assert [threads_for("script", c) for c in cores] == [1, 2, 4, 16]  # a command owns the machine
    assert [threads_for("small", c) for c in cores] == [1, 1, 1, 1]  # small MLPs: one thread
    assert [threads_for("ddp-rank", 16, ranks=r) for r in (1, 2, 3, 32)] == [16, 8, 5, 1]  # the cores shared out
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun's processes on this machine
    assert threads_for("ddp-rank", 16) == 4 and threads_for("ddp-rank", 2) == 1
    assert threads_for("script") == len(os.sched_getaffinity(0))  # the cores this process may use
    with pytest.raises(ValueError, match="unknown threads role"):
        threads_for("gpu")


def test_atlas_threads_sets_every_role_but_small(monkeypatch):
    monkeypatch.setenv("ATLAS_THREADS", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert [threads_for(role, 16) for role in THREAD_ROLES] == [3 if role != "small" else 1 for role in THREAD_ROLES]
    monkeypatch.setenv("ATLAS_THREADS", "0")
    assert threads_for("server", 8) == 1
    monkeypatch.setenv("ATLAS_THREADS", "many")  # not a number: ignored
    assert threads_for("server", 8) == 7


def _in_new_thread(fn):
    box = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join()
    return box[0]


def test_torch_threads_are_per_thread_and_restored():
    """torch's OpenMP setting is per thread: a thread that has used torch keeps its count whatever another sets,
    so `torch_threads` sets and restores the calling thread's own (sessions side by side cannot undo each other)."""
    jobs, answers = queue.Queue(), queue.Queue()

    def worker():
        while (job := jobs.get()) is not None:
            answers.put(job())

    other = threading.Thread(target=worker)
    other.start()
    before = torch.get_num_threads()
    try:
        jobs.put(lambda: (torch.set_num_threads(2), torch.get_num_threads())[1])
        assert answers.get() == 2
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            jobs.put(torch.get_num_threads)
            assert answers.get() == 2  # the other thread keeps its own count
            with torch_threads(2):
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
        jobs.put(_count_inside_and_after)
        assert answers.get() == (1, 2)
    finally:
        jobs.put(None)
        other.join()
        torch.set_num_threads(before)  # also the count that threads new to torch start with


def _count_inside_and_after():
    with torch_threads(1):
        inside = torch.get_num_threads()
    return inside, torch.get_num_threads()


def test_the_server_sets_its_threads_in_each_rerun_thread(monkeypatch):
    """Streamlit runs each rerun in a new thread; streamlit_app.py's call sets that thread's count every time."""
    before = torch.get_num_threads()
    monkeypatch.setenv("ATLAS_THREADS", "2")
    assert _in_new_thread(lambda: (configure_server_threads(), torch.get_num_threads())) == (2, 2)
    monkeypatch.setenv("ATLAS_THREADS", "1")
    assert _in_new_thread(lambda: (configure_server_threads(), torch.get_num_threads())) == (1, 1)
    assert _in_new_thread(lambda: use_threads("script")) == 1
    assert torch.get_num_threads() == before  # the test's own thread was never touched
    torch.set_num_threads(before)
