from __future__ import annotations

import pytest
import torch

from core.device import describe_device, pick_device
from core.errors import BadInputError
from core.metrics import sliced_wasserstein


def test_sliced_wasserstein_of_a_shift_is_the_projected_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5000, 2, generator=g)
    # shifting by v moves every 1-D projection by <u, v>; SW2 = sqrt(E_u <u, v>^2) = |v| / sqrt(2) in 2-D
    shifted = a + torch.tensor([3.0, 0.0])
    assert sliced_wasserstein(a, shifted, projections=1000, generator=g) == pytest.approx(3.0 / 2**0.5, rel=0.05)
    assert sliced_wasserstein(a, a.clone(), generator=g) == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_handles_unequal_sizes_and_rejects_bad_sets():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3000, 3, generator=g), torch.randn(1000, 3, generator=g)
    assert sliced_wasserstein(a, b, generator=g) < 0.1
    assert sliced_wasserstein(a, b * 3, generator=g) > 0.5
    with pytest.raises(BadInputError):
        sliced_wasserstein(a, torch.randn(10, 2))


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
