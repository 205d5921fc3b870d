"""The Inversion page's models, data and per-session results.

Quick results (a point cloud's or the latent plane's round trip, two digits' inversion) are memoised in the
session under the settings they were made with, so that a rerun for another tab's widget costs nothing. The
digits' error measurement is a long job: its rows are stored as they finish, so a Stop keeps them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import streamlit as st
import torch

from core.data.images import as_digit, read_upload, uint8_to_tensor
from core.data.toy import TOY_SETS
from core.diffusion.mixture import GaussianMixture
from core.labs import ground_truth as gt
from core.labs.inversion import ErrorRow
from core.labs.samplers import ImageModel
from core.text import plain_label
from ui.common import cache
from ui.common.live import Throttle

T = TypeVar("T")
FIT_POINTS, FIT_COMPONENTS = 4000, 10
MEASURED = "inv_measured"  # (settings key, rows, rows planned) of the digits' error measurement


def memo(name: str, key: Any, make: Callable[[], T]) -> T:
    """`make()` once per `key` under `name` in this session (the latest key only)."""
    text = json.dumps(key, default=str)
    found = st.session_state.get(name)
    if found is None or found[0] != text:
        found = st.session_state[name] = (text, make())
    return found[1]


# ---- point clouds ------------------------------------------------------------------------------------------


def cloud_sources() -> dict[str, str]:
    """The clouds on offer: the mixture presets (exact as they stand) and 2-D toy sets (a mixture fitted to them)."""
    out = {f"preset:{name}": name for name in gt.PRESETS}
    out |= {f"toy:{key}": f"{spec.title} (a {FIT_COMPONENTS}-Gaussian fit)" for key, spec in TOY_SETS.items()
            if spec.dim == 2}  # fmt: skip
    return out


@st.cache_resource(show_spinner="Fitting a mixture to the toy set…", max_entries=16)
def _fitted(key: str) -> GaussianMixture:
    return gt.fit_mixture(TOY_SETS[key].cloud(FIT_POINTS, seed=0).points, FIT_COMPONENTS)


def cloud_mixture(source: str) -> GaussianMixture:
    """The mixture behind a cloud source; its denoiser is exact, so the round trip's only error is the solver's."""
    kind, name = source.split(":", 1)
    return gt.shaped_mixture(gt.PRESETS[name]) if kind == "preset" else _fitted(name)


# ---- digits ------------------------------------------------------------------------------------------------


def mnist_models() -> dict[str, str]:
    """The zoo's pixel models of MNIST digits: name -> title."""
    return {m.name: m.title for m in cache.registry().models.values() if m.family == "pixel" and m.data == "mnist"}


def model(name: str) -> ImageModel:
    return cache.zoo_model(name)


def held_out():
    return cache.image_set("mnist", "test")


def data_digit(index: int) -> tuple[torch.Tensor, int, str]:
    """A held-out digit [1, 28, 28] in [-1, 1], its label and a caption."""
    digits = held_out()
    index = int(np.clip(index, 0, len(digits.labels) - 1))
    return uint8_to_tensor(digits.images[index]), int(digits.labels[index]), f"test digit #{index}"


def uploaded_digit(data: bytes, name: str) -> tuple[torch.Tensor, str]:
    """An upload as a digit (decoded once per upload in this session), with a caption."""
    digest = hashlib.sha256(data).hexdigest()
    found = st.session_state.get("inv-upload")
    if found is None or found[0] != digest:
        digit, flipped = as_digit(read_upload(data, plain_label(name)))
        found = st.session_state["inv-upload"] = (digest, digit, flipped)
    note = " (inverted: a light ground)" if found[2] else ""
    return found[1], f"{plain_label(name)}{note}"


def measured(key: Any) -> tuple[list[ErrorRow], int] | None:
    """The rows measured for these settings so far, and how many were planned."""
    found = st.session_state.get(MEASURED)
    return found[1:] if found is not None and found[0] == json.dumps(key, default=str) else None


def measure(key: Any, rows: Iterator[ErrorRow], total: int, progress: Any) -> list[ErrorRow]:
    """Run a measurement row by row with a progress bar, storing the rows after each (a Stop keeps them)."""
    done: list[ErrorRow] = []
    st.session_state[MEASURED] = (json.dumps(key, default=str), done, total)
    bar = Throttle(0.3)
    progress.progress(0.0, text=f"0 of {total} round trips…")
    for row in rows:
        done.append(row)
        if bar.ready(len(done) == total):
            progress.progress(len(done) / total, text=f"{len(done)} of {total} round trips · last {row.seconds:.1f} s")
    progress.empty()
    return done
