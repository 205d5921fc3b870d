"""Where work runs: the device choice and the server's thread count."""

from __future__ import annotations

import torch

from core.device import describe_device, pick_device


def test_device_choice_and_description(monkeypatch):
    monkeypatch.setenv("ATLAS_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    info = describe_device(torch.device("cpu"))
    assert info.kind == "cpu" and info.torch_version == torch.__version__ and info.threads >= 1
    assert "CPU" in info.summary


def test_server_threads_leave_a_core_free_and_follow_atlas_threads(monkeypatch):
    from core.device import server_threads

    monkeypatch.delenv("ATLAS_THREADS", raising=False)
    assert [server_threads(c) for c in (1, 2, 4, 16)] == [1, 1, 3, 15]
    monkeypatch.setenv("ATLAS_THREADS", "3")
    assert server_threads(2) == 3
    monkeypatch.setenv("ATLAS_THREADS", "many")  # not a number: ignored
    assert server_threads(8) == 7
