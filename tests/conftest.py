"""Shared test setup: the repository root on sys.path, deterministic CPU torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# Tests use small models, where a second OpenMP thread costs more in waiting than it gains (and, on a
# busy machine, much more); one thread also makes timings and float results steadier.
torch.set_num_threads(1)
os.environ.setdefault("ATLAS_THREADS", "1")  # the same for the commands and servers tests start (core/device.py)


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


@pytest.fixture(scope="session")
def app_zoo(tmp_path_factory):
    """A manifest of tiny MNIST-shaped test models (plus the bundled classifier) for page tests."""
    from tests.zoo_fixtures import write_app_zoo

    return write_app_zoo(tmp_path_factory.mktemp("app-zoo"))


@pytest.fixture
def app_env(app_zoo, monkeypatch, tmp_path):
    """Pages see the test manifest, offline, with an empty Hugging Face cache."""
    monkeypatch.setenv("ATLAS_MANIFEST", str(app_zoo))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path / "runs"))
    return app_zoo
