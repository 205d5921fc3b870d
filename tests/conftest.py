"""Shared test setup: the repository root on sys.path, deterministic CPU torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A local Hub endpoint and an empty Hugging Face cache for one test."""
    from tests.hub_server import FakeHub
    from zoo.hub import forget_probes

    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    forget_probes()
    yield hub
    hub.stop()
    forget_probes()
