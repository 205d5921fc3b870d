"""The Over EMA length tab: one checkpoint of a run rebuilt at several post-hoc EMA lengths (Karras et al. 2024)
from the two snapshot streams its training saved (zoo/posthoc.py), all from the same noise: a row per length, and
for MNIST runs FD-LeNet, precision, recall, density, coverage and class shares against the length. Rebuilt models
are sampled and measured under their own names (the checkpoint's path and the length), so results never mix with
the Over training tab's."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import AtlasError
from core.labs.compare import is_mnist
from core.labs.toy import SampleResult, ToyRun, run_sampler
from core.paths import allowed_roots
from core.runs.record import Run
from core.training.posthoc_ema import STREAMS, coefficients, gamma_of
from ui.common import session_runs
from ui.common.cache import posthoc_models
from ui.common.runs import run_label, runs_with_unet_checkpoints
from ui.common.tables import show_table
from ui.common.widgets import attempt, run_job
from ui.compare_checkpoints import sources, state
from ui.compare_checkpoints.over_training import (
    ToyAxis,
    ToySampling,
    image_rows,
    quality_charts,
    records,
    toy_rows_view,
)
from ui.compare_checkpoints.views import Settings, controls, downloads, quality, same_shape
from zoo.local import local_entry
from zoo.posthoc import describe, length_label, run_snapshots, snapshots_in

PREFIX = "oe"
CHOICES = (0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.085, 0.1, 0.12, 0.15, 0.2, 0.25)
DEFAULT = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2)
MAX_LENGTHS = 8


def key_of(folder: Path, length: float) -> str:
    """The name a rebuilt length is sampled and measured under."""
    return f"phema:{folder}#{length:.4f}"


def posthoc_runs() -> dict[str, Run]:
    """The runs folder's image runs whose last checkpoint carries post-hoc EMA snapshots."""
    roots = tuple(allowed_roots())
    found = {}
    for label, run in runs_with_unet_checkpoints().items():
        try:
            if snapshots_in([run.checkpoints[-1][1]], roots):
                found[label] = run
        except AtlasError:
            found[label] = run  # listed: the tab says what is wrong with its snapshots
    return found


def tab() -> None:
    st.markdown(
        "One checkpoint at the **EMA lengths** you pick, rebuilt after training from the two EMA snapshot streams "
        "the run saved (post-hoc EMA, Karras et al. 2024), all from the same noise: a row per length, and the "
        "quality measure against the length. σ_rel is the averaging window's width relative to the training so far "
        f"(0.1: about its last tenth); the streams are σ_rel {' and '.join(f'{r:g}' for r in STREAMS)}."
    )
    runs: dict[str, Run | ToyRun] = dict(posthoc_runs())
    toy = session_runs.toy_model()
    if toy is not None and toy.snapshots.streams:
        runs[run_label(toy.log)] = toy
    if not runs:
        st.info(
            "No run with post-hoc EMA snapshots yet: `python -m zoo train RECIPE` saves both streams in every "
            "checkpoint (a recipe's `posthoc_ema` names other lengths)."
        )
        return
    if st.session_state.get(f"{PREFIX}-run", next(iter(runs))) not in runs:  # e.g. a run that has gone since
        del st.session_state[f"{PREFIX}-run"]
    name = st.selectbox("Run", list(runs), key=f"{PREFIX}-run")
    run = runs[name]
    if isinstance(run, ToyRun):
        run.idle()  # an interrupted run of the Toy lab may still be training it, for a moment
        toy_lengths(run)
        return
    snaps = attempt(run_snapshots, run.checkpoints[-1][1], tuple(allowed_roots()))
    if not snaps:
        return
    folders = {s: f for s, f in run.checkpoints if f is not None}
    steps = sorted({s.step for s in snaps} & set(folders))
    step, lengths = _pick(steps, name)
    if not lengths:
        return
    _fits([(s.step, s.gamma) for s in snaps], step, lengths, describe([s for s in snaps if s.step <= step]))
    folder = folders[step]
    entry = attempt(local_entry, str(folder))
    if entry is None:
        return
    settings = controls(PREFIX, max_images=16, images=8)
    keys = {key_of(folder, r): r for r in lengths}
    titles = {key: length_label(r) for key, r in keys.items()}
    if not same_shape({key: entry for key in keys}, titles):
        return
    if st.button("Sample", type="primary", key=f"{PREFIX}-go"):
        st.session_state[f"{PREFIX}-settings"] = settings
        run_job("post-hoc EMA sampling", _sample, folder, tuple(lengths), settings)
    done = {key: r for key in keys if (r := state.result_of(key, PREFIX)) is not None}
    where = f"{run.name} {sources.step_label(step)}"
    panels = image_rows(
        done, {k: f"σ_rel {r:g}" for k, r in keys.items()}, {k: f"{where} {titles[k]}" for k in done}, PREFIX, settings
    )
    rows: dict[str, dict[str, object]] = {}
    if is_mnist(entry):
        st.subheader("Quality against the EMA length")

        def measure(n: int) -> None:
            models = _models(folder, tuple(lengths))
            sampler, n_steps, seed, _, label = settings
            state.measure_all(models, sampler, n_steps, seed, n, label, PREFIX)

        rows = quality(titles, PREFIX, measure)
        quality_charts(rows, {key: keys[key] for key in rows}, PREFIX, "EMA length σ_rel", log_x=True)
    table = [{"sigma_rel": keys[k], "step": step, **row} for k, row in rows.items()]
    specs = {key: f"{run.name} @ {sources.step_label(step)}, {titles[key]}" for key in keys}
    loaded: dict[str, object] = {}

    def model_of(key: str) -> object:  # the rebuilt models, found once for all the records
        if not loaded:
            loaded.update(_models(folder, tuple(lengths)))
        return loaded[key]

    kept = records(done, rows, model_of, specs, PREFIX)
    downloads(panels, table, PREFIX, stack=True, records=kept)


def _pick(steps: list[int], name: str) -> tuple[int, list[float]]:
    """The checkpoint (the last by default) and the EMA lengths (sorted; none: a sentence) to rebuild."""
    step = st.selectbox(
        "Checkpoint",
        steps,
        len(steps) - 1,
        format_func=sources.step_label,
        key=f"{PREFIX}-step-{name}",
        help="The training step whose EMA is rebuilt, from the snapshots saved up to it.",
    )
    lengths = st.multiselect(
        "EMA lengths (σ_rel)",
        CHOICES,
        list(DEFAULT),
        max_selections=MAX_LENGTHS,
        key=f"{PREFIX}-lengths",
        format_func=lambda r: f"{r:g}",
    )
    if not lengths:
        st.info("Pick the EMA lengths to rebuild.")
    return step, sorted(lengths)


def _fits(snaps: list[tuple[int, float]], step: int, lengths: list[float], kept: str) -> None:
    """How each length is rebuilt from the snapshots (step, gamma): its exponent, how many snapshots carry it, and
    how well its profile fits; `kept` says which snapshots there are."""
    rows = []
    for r in lengths:
        f = coefficients(snaps, step, r)
        rows.append(
            {
                "σ_rel": r,
                "γ": round(gamma_of(r), 2),
                "snapshots": int((f.coefficients != 0).sum()),
                "profile error": f"{f.profile_error:.2%}",
            }
        )
    st.caption(
        f"Snapshots up to {sources.step_label(step)}: {kept}. Each length's weights are the combination of them "
        "whose averaging profile is closest to the wanted one; the profile error is how far it stays (relative "
        "L2): lengths between and near the streams rebuild closely, very short ones need snapshots taken often."
    )
    show_table(rows)


def toy_lengths(run: ToyRun) -> None:
    """The Toy lab model at one kept checkpoint, rebuilt at each length: clouds, SW2 and MMD against the length."""
    kept = run.snapshots.streams
    steps = [s for s in run.snapshots.steps if s in kept]
    step, lengths = _pick(steps, run.name)
    if not lengths:
        return
    snaps = [(s, gamma_of(r)) for s in steps for r, _ in kept[s]]
    streams = sorted({r for s in steps for r, _ in kept[s]})
    shown = [s for s in steps if s <= step]
    what = f"{len(streams)} streams (σ_rel {', '.join(f'{r:.3f}' for r in streams)}) at {len(shown)} steps"
    _fits(snaps, step, lengths, what)

    def at_length(toy: ToyRun, length: float, s: ToySampling) -> SampleResult:
        return run_sampler(toy, s.sampler, s.steps, s.n, seed=s.seed, path_points=1, at_step=step, ema_length=length)

    axis = ToyAxis(
        f"{PREFIX}-toy",
        "sigma_rel",
        "EMA length σ_rel",
        lambda r: f"σ_rel {r:g}",
        at_length,
        "ema_lengths",
        True,
        f"{step}-",
    )
    toy_rows_view(run, lengths, axis, {"checkpoint": step})


def _models(folder: Path, lengths: tuple[float, ...]) -> dict[str, object]:
    return {key_of(folder, r): model for r, (model, _) in posthoc_models(folder, lengths).items()}


def _sample(folder: Path, lengths: tuple[float, ...], settings: Settings) -> None:
    state.sample_all(_models(folder, lengths), *settings, PREFIX)
