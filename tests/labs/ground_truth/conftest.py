"""The accuracy bench's mixture, shared by the ground-truth lab's tests."""

from __future__ import annotations

import pytest

from core.labs.ground_truth import mixtures


@pytest.fixture(scope="module")
def mix():
    return mixtures.shaped_mixture(mixtures.PRESETS["Four unequal blobs"])
