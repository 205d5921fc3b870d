"""The Compare checkpoints page's work and session state: sampling the checkpoints it was given from the same
noise, and measuring the MNIST ones. Each checkpoint's images and quality are kept in the session (a Memo under
the tab's prefix, "ck" side by side or "ot" over training, and the checkpoint's name) as soon as they are done,
so a Stop keeps those done; a Measure's tally (ui/common/jobs.py) says how far it got."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

import streamlit as st

from core.errors import AtlasError, BadInputError
from core.labs.compare import (
    GUIDANCE,
    PRDC_K,
    Quality,
    measure,
    plan_quality,
    plan_work,
    prdc_reference,
    settings_for,
)
from core.labs.samplers import SamplerSettings, SamplingResult, run_sampler
from core.metrics.images import frechet_reference_band
from core.metrics.prdc import PRDC, prdc
from core.metrics.reference import ReferenceBand
from core.text import plain_label
from core.training.budget import TimeLimitError
from ui.common import jobs
from ui.common.cache import digit_features, manifest_path, zoo_model
from ui.common.live import progress_and_stop
from ui.common.memo import Memo, forget_others
from ui.common.tables import ABSENT
from zoo.loaders import LoadedModel

CLASSIFIER = "mnist-lenet"
PLANNED = (
    "dpmpp_2m"  # what the cost of a run with each folder's own sampler is planned with: one call a step, as theirs
)


@dataclass(frozen=True)
class QualityKey:
    """What a checkpoint's quality was measured with: its sampling (one image per seed) and the samples."""

    sampling: SamplerSettings
    samples: int


def _results(name: str, prefix: str) -> Memo[SamplerSettings, SamplingResult]:
    """A checkpoint's images, by what `settings_for` chose for it (a model without classes samples without one,
    whatever class the page asks for; the noise starts at the model's own cap)."""
    return Memo(f"{prefix}-result-{name}")


def _qualities(name: str, prefix: str) -> Memo[QualityKey, Quality]:
    return Memo(f"{prefix}-quality-{name}")


def sample_all(
    models: Mapping[str, LoadedModel],
    sampler: str | None,
    steps: int,
    seed: int,
    batch: int,
    label: int | None,
    prefix: str = "ck",
) -> None:
    """Every checkpoint's images from the shared noise, each with what `settings_for` gives it (`sampler` None: a
    folder's own scheduler's), with one progress bar and a Stop for all; the work is capped before it starts, and
    each checkpoint's images are kept as soon as they are done (a Stop keeps them)."""
    plan = SamplerSettings(sampler=sampler or PLANNED, steps=steps, batch=batch, label=label, guidance=GUIDANCE)
    plan_work(list(models.values()), [sampler or PLANNED], [steps], plan)
    forget_others(f"{prefix}-result-", models)  # the tab shows the checkpoints it samples now, not those before
    failed = []
    with progress("Sampling…", "Keeps the checkpoints sampled so far.", prefix) as report:
        for k, (name, model) in enumerate(models.items()):
            settings = settings_for(model, sampler, steps, seed, batch, label)
            step = lambda i, k=k, name=name: report((k + (i + 1) / steps) / len(models), name)  # noqa: E731
            try:
                result = run_sampler(model, settings, every=steps + 1, keep=1, on_step=step)
            except TimeLimitError:  # the job's time is up: the checkpoints sampled so far are kept
                raise
            except AtlasError as e:  # one checkpoint that cannot sample does not stop the others
                failed.append(f"{plain_label(name)}: {e}")
                continue
            _results(name, prefix).put(settings, result)
    if failed:
        raise BadInputError(" ".join(failed))


@contextmanager
def progress(text: str, stop_help: str, prefix: str) -> Iterator[Callable[[float, str], None]]:
    """The tab's progress bar and Stop (ui/common/live.progress_and_stop), as `report(share, checkpoint name)`."""
    with progress_and_stop(text, f"{prefix}-stop", stop_help) as bar:
        yield lambda share, name: bar.show(share, f"{name}: {share:.0%}")


def result_of(name: str, prefix: str = "ck") -> SamplingResult | None:
    """The checkpoint's last images, whatever settings they were sampled with."""
    found = _results(name, prefix).latest()
    return found[1] if found is not None else None


def is_current(
    name: str,
    model: LoadedModel,
    sampler: str | None,
    steps: int,
    seed: int,
    batch: int,
    label: int | None,
    prefix: str = "ck",
) -> bool:
    """Whether the checkpoint's kept images were sampled with the settings on the page now."""
    return _results(name, prefix).get(settings_for(model, sampler, steps, seed, batch, label)) is not None


@dataclass(eq=False)
class Measuring:
    """The tab's last Measure: how many of its checkpoints were measured (ui/common/jobs.py)."""

    tally: jobs.Tally


def _measuring(prefix: str) -> Memo[tuple[str, ...], Measuring]:
    return Memo(f"{prefix}-measuring")  # by the checkpoints' names


_REDRAW: ContextVar[Callable[[], None] | None] = ContextVar("checkpoint_quality_redraw", default=None)


@contextmanager
def redrawing(redraw: Callable[[], None]) -> Iterator[None]:
    """Within it, a Measure run in this script run calls `redraw()` as each checkpoint's numbers are kept (the
    table's view sets it; the tabs' own `measure(n)` callbacks need not pass it on)."""
    token = _REDRAW.set(redraw)
    try:
        yield
    finally:
        _REDRAW.reset(token)


def measure_all(
    models: Mapping[str, LoadedModel],
    sampler: str | None,
    steps: int,
    seed: int,
    n: int,
    label: int | None,
    prefix: str = "ck",
) -> None:
    """FD-LeNet, precision, recall, density, coverage and class shares of n samples per MNIST checkpoint, with one
    progress bar and a Stop for all; each checkpoint's numbers are kept as soon as they are done (a Stop keeps them),
    then redrawn (`redrawing`)."""
    plan = SamplerSettings(sampler=sampler or PLANNED, steps=steps, label=label, guidance=GUIDANCE)
    plan_quality(list(models.values()), plan, n)
    forget_others(f"{prefix}-quality-", models)  # as in sample_all
    tally = jobs.start(_measuring(prefix), tuple(models), Measuring(jobs.Tally(planned=len(models)))).tally
    classifier, reference = zoo_model(CLASSIFIER).module, digit_features(CLASSIFIER)
    with progress("Sampling and scoring…", "Keeps the checkpoints measured so far.", prefix) as report:
        for k, (name, model) in enumerate(models.items()):
            settings = settings_for(model, sampler, steps, seed, 1, label)
            share = lambda f, k=k, name=name: report((k + f) / len(models), name)  # noqa: E731
            found = measure(model, settings, n, classifier, reference, share)
            if not tally.add(partial(_qualities(name, prefix).put, QualityKey(settings, n), found)):
                return  # a later run has shown the Measure as stopped
            if (redraw := _REDRAW.get()) is not None:
                redraw()


def stopped(prefix: str = "ck") -> str | None:
    """What the tab's last Measure got through, when a Stop ended it (None when it measured every checkpoint)."""
    if (found := jobs.shown(_measuring(prefix))) is None:
        return None
    return found[1].tally.stopped("checkpoints", "any checkpoint was measured", "press **Measure** to measure them all")


def quality_of(name: str, prefix: str = "ck") -> Quality | None:
    """The checkpoint's last quality measure, whatever settings it was measured with."""
    found = _qualities(name, prefix).latest()
    return found[1] if found is not None else None


def measured_with(name: str, prefix: str = "ck") -> SamplerSettings | None:
    """The sampling of the checkpoint's last quality measure (core/labs/compare.measure draws its samples with
    it), or None before any."""
    found = _qualities(name, prefix).latest()
    return found[0].sampling if found is not None else None


TRAINING_DIGITS = 5000  # the real digits FD-LeNet's reference band draws from (the held-out ones are its reference)


def digits_band(n: int) -> ReferenceBand:
    """FD-LeNet of n real training digits to the held-out digits, over repeats: what a checkpoint's n samples,
    measured against those same held-out digits (`measure_all`), read if they were real digits."""
    return _digits_band(str(manifest_path()), n)


@st.cache_data(show_spinner="Measuring real digits against the held-out ones…", max_entries=8)
def _digits_band(manifest: str, n: int) -> ReferenceBand:
    del manifest  # the key: another zoo, other digits
    reference = digit_features(CLASSIFIER)
    pool = digit_features(CLASSIFIER, "train", TRAINING_DIGITS)  # the same features
    return frechet_reference_band(pool, reference, n, what="real training digits against the held-out digits")


def digits_prdc(n: int) -> PRDC:
    """Precision, recall, density and coverage of real training digits measured as a checkpoint's n samples are
    (`core.labs.compare.score`: m = min(n, held-out digits) of them against m held-out digits): what those read for
    real digits (one draw; its SEs give its spread)."""
    return _digits_prdc(str(manifest_path()), n)


@st.cache_data(show_spinner="Measuring real digits against the held-out ones…", max_entries=8)
def _digits_prdc(manifest: str, n: int) -> PRDC:
    del manifest  # the key: another zoo, other digits
    reference = digit_features(CLASSIFIER)
    pool = digit_features(CLASSIFIER, "train", TRAINING_DIGITS)
    m = min(n, len(reference), len(pool))
    return prdc(prdc_reference(reference, m), pool[:m], PRDC_K)


PRDC_COLUMNS = ("precision", "recall", "density", "coverage")


def _prdc_cells(found: PRDC | None) -> dict[str, object]:
    """The table's PRDC columns: each measure and its standard error (None, shown as a dash, without a PRDC)."""
    cells: dict[str, object] = {}
    for name in PRDC_COLUMNS:
        cells[name] = None if found is None else round(getattr(found, name), 3)
        cells[f"{name} SE"] = None if found is None else round(getattr(found, f"{name}_se"), 3)
    return cells


def reference_rows(n: int | None) -> list[dict[str, object]]:
    """The table's reference row for checkpoints measured on n samples each: real digits measured the same way
    (FD-LeNet: the band's middle, and its range in the row's name; the PRDC of one draw, with its SEs)."""
    if n is None:
        return []
    band = digits_band(n)
    name = f"real digits (FD-LeNet {band.span(1)} over {len(band.values)} draws)"  # `samples` gives the size
    return [{"checkpoint": name, "samples": n, "FD-LeNet": round(band.mean, 2), **_prdc_cells(digits_prdc(n))}]


def quality_row(name: str, q: Quality) -> dict[str, object]:
    return {
        "checkpoint": name,
        "samples": q.samples,
        "FD-LeNet": round(q.fd_lenet, 2),
        "± (bootstrap SE)": round(q.fd_se, 2),
        **_prdc_cells(q.prdc),
        "read as requested class": ABSENT if q.accuracy is None else f"{q.accuracy:.1%}",
        "smallest class share": f"{q.smallest_class:.1%}",
        "largest class share": f"{q.largest_class:.1%}",
    }
