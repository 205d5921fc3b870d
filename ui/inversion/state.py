"""The Inversion page's models, data and per-session results.

Quick results (a point cloud's and the latent plane's round trips and ladders, two digits' round trip, their
interpolation and class swap) are kept in the session (ui/common/memo.Memo) under keys whose fields name the
settings each depends on, so a rerun (another widget, another page and back) costs nothing. The digits' error
measurement is a long job: its rows are kept as they finish (ui/common/jobs.py), so a Stop keeps them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import streamlit as st
import torch

from core.data.images import as_digit, read_upload, uint8_to_tensor
from core.data.toy import TOY_SETS
from core.diffusion.mixture import GaussianMixture
from core.labs.ground_truth import mixtures
from core.labs.inversion import ErrorRow, Interpolation, Inverted, MeasurePlan
from core.labs.samplers import ImageModel
from core.text import plain_label
from ui.common import cache, jobs
from ui.common.live import ProgressBar
from ui.common.memo import Memo

FIT_POINTS, FIT_COMPONENTS = 4000, 10


# ---- what each result depends on ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudKey:
    """A point cloud's ladder: the cloud and its points (every deterministic sampler runs at every step count)."""

    source: str
    points: int
    seed: int


@dataclass(frozen=True)
class CloudTripKey:
    """The cloud's picture: its points run up and back with the page's sampler and steps."""

    cloud: CloudKey
    sampler: str
    steps: int


@dataclass(frozen=True)
class LatentTripKey:
    """The latent plane's picture: the first `points` digits up and back (class bound in or not, at the scale)."""

    points: int
    sampler: str
    steps: int
    conditional: bool
    scale: float


@dataclass(frozen=True)
class LatentLadderKey:
    """The latent plane against the steps: the fixed samplers and step counts, at the page's class and scale."""

    points: int
    conditional: bool
    scale: float


@dataclass(frozen=True)
class LatentScaleKey:
    """The latent plane against the guidance scale (with each digit's class): every scale at the page's sampler
    and steps."""

    points: int
    sampler: str
    steps: int


@dataclass(frozen=True)
class PairKey:
    """Two digits run up a pixel model's ODE without a class: the model, sampler, steps and the digits (a
    caption and, for an upload, its pixels' sum tell one digit A from another)."""

    model: str
    sampler: str
    steps: int
    caption_a: str
    sum_a: float
    caption_b: str


@dataclass(frozen=True)
class RoundTripKey:
    """The two digits' round trip, and digit A's class swap: the pair with the classes bound in and the scale."""

    pair: PairKey
    class_a: int | None
    label_b: int
    scale: float


@dataclass(frozen=True)
class InterpolationKey:
    """Interpolation through the two digits' noise (the model without a class): the pair and the frames."""

    pair: PairKey
    frames: int


@dataclass(frozen=True)
class MeasureKey:
    """The digits' error measurement: the model, digits #first to #end - 1, the samplers and step counts (as
    sets: reordering them keeps the rows), whether each digit's class is bound in, and the page's sampler and
    steps with whether the guidance scale was swept at them (the page's sampler and steps are part of the key
    even without a sweep, as they have always been: changing them asks for a new Measure)."""

    model: str
    first: int
    end: int
    samplers: tuple[str, ...]
    ladder: tuple[int, ...]
    guided: bool
    sampler: str
    steps: int
    scale_sweep: bool


@dataclass(eq=False)
class Measurement:
    """The plan and its rows so far, kept through `tally` as each round trip finishes."""

    plan: MeasurePlan
    tally: jobs.Tally
    rows: list[ErrorRow] = field(default_factory=list)


CLOUD_TRIP = Memo[CloudTripKey, Inverted]("inv-cloud-trip")
CLOUD_LADDER = Memo[CloudKey, list[ErrorRow]]("inv-cloud-ladder")
LATENT_TRIP = Memo[LatentTripKey, Inverted]("inv-lat-trip")
LATENT_LADDER = Memo[LatentLadderKey, list[ErrorRow]]("inv-lat-ladder")
LATENT_SCALES = Memo[LatentScaleKey, list[ErrorRow]]("inv-lat-scale")
ROUND_TRIP = Memo[RoundTripKey, Inverted]("inv-px-result")
INTERPOLATION = Memo[InterpolationKey, Interpolation]("inv-px-interp")
CLASS_SWAP = Memo[RoundTripKey, torch.Tensor]("inv-px-swap")
UPLOAD = Memo[str, tuple[torch.Tensor, bool]]("inv-upload")  # by the upload's SHA-256: (digit, flipped)
MEASURED = Memo[MeasureKey, Measurement]("inv-measured")


# ---- point clouds ------------------------------------------------------------------------------------------


def cloud_sources() -> dict[str, str]:
    """The clouds on offer: the mixture presets (exact as they stand) and 2-D toy sets (a mixture fitted to them)."""
    out = {f"preset:{name}": name for name in mixtures.PRESETS}
    out |= {
        f"toy:{key}": f"{spec.title} (a {FIT_COMPONENTS}-Gaussian fit)"
        for key, spec in TOY_SETS.items()
        if spec.dim == 2
    }
    return out


@st.cache_resource(show_spinner="Fitting a mixture to the toy set…", max_entries=16)
def _fitted(key: str) -> GaussianMixture:
    return mixtures.fit_mixture(TOY_SETS[key].cloud(FIT_POINTS, seed=0).points, FIT_COMPONENTS)


def cloud_mixture(source: str) -> GaussianMixture:
    """The mixture behind a cloud source; its denoiser is exact, so the round trip's only error is the solver's."""
    kind, name = source.split(":", 1)
    return mixtures.shaped_mixture(mixtures.PRESETS[name]) if kind == "preset" else _fitted(name)


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
    digit, flipped = UPLOAD.make(
        hashlib.sha256(data).hexdigest(), lambda: as_digit(read_upload(data, plain_label(name)))
    )
    note = " (inverted: a light ground)" if flipped else ""
    return digit, f"{plain_label(name)}{note}"


def measured(key: MeasureKey) -> Measurement | None:
    """The measurement made for these settings (its rows so far, as shown from now on), or None."""
    found = jobs.shown(MEASURED)
    return found[1] if found is not None and found[0] == key else None


def measure(
    key: MeasureKey,
    plan: MeasurePlan,
    rows: Iterator[ErrorRow],
    progress: Any,
    redraw: Callable[[Measurement], None],
) -> None:
    """Run a measurement row by row with a progress bar, keeping each row as it finishes (a Stop keeps them) and
    passing the measurement so far to `redraw`."""
    found = jobs.start(MEASURED, key, Measurement(plan, jobs.Tally(planned=plan.total)))
    bar = ProgressBar(progress)
    bar.show(0.0, f"0 of {plan.total} round trips…")
    for row in rows:
        if not found.tally.add(partial(found.rows.append, row)):
            return  # a later run has shown the measurement as stopped
        bar.show(
            found.tally.done / plan.total, f"{found.tally.done} of {plan.total} round trips · last {row.seconds:.1f} s"
        )
        redraw(found)
    progress.empty()
