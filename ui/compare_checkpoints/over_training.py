"""The Over training tab: one run's checkpoints at chosen steps from the same noise, a row per step, and the
quality measure against the step. Runs come from the runs folder (UNet checkpoints that `python -m zoo train`
saves: FD-LeNet, precision, recall, density, coverage and class shares for MNIST runs) or the Toy lab's current
model (kept in memory every 250 steps: SW2 and MMD to fresh data). Checkpoints are loaded only when sampled or
measured, and results are kept under each checkpoint folder's path, so switching runs or steps never mixes them
up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data.images import image_strip
from core.diffusion.samplers import SAMPLERS
from core.errors import AtlasError
from core.labs import provenance
from core.labs.compare import is_mnist
from core.labs.samplers import SamplerSettings, SamplingResult
from core.labs.toy import SampleResult, ToyRun, distances, reference, run_sampler
from core.runs.record import Run
from ui.common import session_runs
from ui.common.cache import local_model
from ui.common.charts import SERIES_COLORS, add_band, log_axis
from ui.common.memo import Memo, forget_others
from ui.common.runs import over_training_runs
from ui.common.widgets import attempt, follow_range, run_job
from ui.compare_checkpoints import sources, state
from ui.compare_checkpoints.figures import cloud_image, clouds_over_steps, over_steps_figure
from ui.compare_checkpoints.views import Settings, controls, downloads, quality, same_shape
from zoo.loaders import LoadedModel
from zoo.local import local_entry

TOY = "ot-toy"


def tab() -> None:
    st.markdown(
        "One run's checkpoints at the steps you pick, all from the same noise: a row per step, and the quality "
        "measure against the step."
    )
    runs = over_training_runs()
    if not runs:
        st.info(
            "No run with checkpoints yet: `python -m zoo train RECIPE` saves them in the runs folder (every "
            "`checkpoint_every` steps), and the Toy lab keeps its model's every 250 steps."
        )
        return
    run, steps = sources.pick_run_steps(runs, "ot", default_count=6)
    if run is None or not steps:
        st.info("Pick a run and the steps to compare.")
        return
    toy = session_runs.toy_model()
    if toy is not None and run is toy.log:
        toy.idle()  # an interrupted run of the Toy lab may still be training it, for a moment
        toy_over_training(toy, steps)
    else:
        pixel_over_training(run, steps)


# ---- image runs -------------------------------------------------------------------------------------------------


def _load(folders: dict[str, Path]) -> dict[str, object]:
    """The checkpoints (by key) loaded now, for a Sample or a Measure; one that cannot load says why."""
    loaded = {}
    for key, folder in folders.items():
        try:
            loaded[key] = local_model(str(folder))
        except AtlasError as e:
            st.error(f"{folder.name}: {e}")
    return loaded


def pixel_over_training(run: Run, steps: list[int]) -> None:
    """A row per step from the same noise, and FD-LeNet, PRDC and class shares against the step (MNIST runs)."""
    folders = {sources.checkpoint_key(f): f for s, f in run.checkpoints if s in steps and f is not None}
    step_of = {sources.checkpoint_key(f): s for s, f in run.checkpoints if f is not None}
    entries = {}
    for key, folder in folders.items():  # what each checkpoint is (its config and shape), without its weights
        try:
            entries[key] = local_entry(str(folder))
        except AtlasError as e:
            st.error(f"{sources.step_label(step_of[key])}: {e}")
    settings = controls("ot", max_images=16, images=8)
    titles = {key: sources.step_label(step_of[key]) for key in entries}
    if not entries or not same_shape(entries, titles):
        return
    if st.button("Sample", type="primary", key="ot-go"):
        st.session_state["ot-settings"] = settings
        run_job("checkpoint sampling", state.sample_all, _load({k: folders[k] for k in entries}), *settings, "ot")
    done = {key: r for key in entries if (r := state.result_of(key, "ot")) is not None}
    panels = image_rows(done, titles, {key: f"{run.name} {titles[key]}" for key in done}, "ot", settings)
    mnist = {key: titles[key] for key, entry in entries.items() if is_mnist(entry)}
    if mnist:
        st.subheader("Quality against the step")
    sampler, n_steps, seed, _, label = settings

    def measure(n: int) -> None:
        state.measure_all(_load({k: folders[k] for k in mnist}), sampler, n_steps, seed, n, label, "ot")

    rows = quality(mnist, "ot", measure)
    quality_charts(rows, {key: step_of[key] for key in rows})
    specs = {key: f"{run.name} @ {titles[key]}" for key in entries}
    kept = records(done, rows, lambda key: local_model(str(folders[key])), specs)
    downloads(panels, [{"step": step_of[k], **row} for k, row in rows.items()], "ot", stack=True, records=kept)


def image_rows(
    done: dict[str, SamplingResult], labels: dict[str, str], names: dict[str, str], prefix: str, settings: Settings
) -> list[tuple[str, np.ndarray]]:
    """A row per sampled checkpoint: its label and its images as one strip (a note first when they were sampled
    with other settings than the tab's now); returns the strips under their `names`, for the grid download."""
    if done and st.session_state.get(f"{prefix}-settings") != settings:
        st.info("These rows are from earlier settings: press **Sample** for the current ones.")
    panels = []
    for key, result in done.items():
        strip = image_strip(result.images)
        left, right = st.columns([1, 8], vertical_alignment="center")
        left.markdown(f"**{labels[key]}**")
        right.image(strip, width="stretch")
        panels.append((names[key], strip))
    return panels


def records(
    done: dict, rows: dict, model_of: Callable[[str], LoadedModel], specs: dict[str, str], prefix: str = "ot"
) -> list[dict]:
    """The downloads' records (core/labs/provenance.py): one per checkpoint shown or measured, with the settings
    its images were sampled with (its row's, else its quality measure's); its model `model_of(key)` from the
    cache, where the Sample or Measure loaded it (one that cannot load now has said why, and gets none)."""
    out = []
    for key in dict.fromkeys([*done, *rows]):
        settings = done[key].settings if key in done else state.measured_with(key, prefix)
        try:
            model = model_of(key)
        except AtlasError:
            continue
        if settings is not None:
            out.append(provenance.record(model, settings, spec=specs[key]))
    return out


def quality_charts(
    rows: dict[str, dict[str, object]],
    xs: dict[str, float],
    prefix: str = "ot",
    x_title: str = "training step",
    log_x: bool = False,
) -> None:
    """FD-LeNet, PRDC and class shares of the measured checkpoints (keys of `rows`) against `xs` (their step, or
    another axis named `x_title`: the Over EMA length tab's length), with real digits' levels at the samples' size."""
    measured = sorted((xs[key], state.quality_of(key, prefix)) for key in rows)
    if not measured:
        return
    x = [s for s, _ in measured]
    axis = {"x_title": x_title}
    fd = ([q.fd_lenet for _, q in measured], [q.fd_se for _, q in measured])
    fig = over_steps_figure(x, {"FD-LeNet": fd}, None, "FD-LeNet to held-out digits (± bootstrap SE)", **axis)
    sizes = {q.samples for _, q in measured}
    size = next(iter(sizes)) if len(sizes) == 1 else None  # the real digits' references need one size
    if size is not None and (band := attempt(state.digits_band, size)) is not None:
        add_band(fig, band, f"FD-LeNet: {band.describe()}", SERIES_COLORS[0])
    figures = [(fig, "fd")]
    if len(sizes) > 1:
        st.caption("These checkpoints were measured on different numbers of samples: measure them again together.")
    if all(q.prdc is not None for _, q in measured):
        series = {
            name: ([getattr(q.prdc, name) for _, q in measured], [getattr(q.prdc, f"{name}_se") for _, q in measured])
            for name in state.PRDC_COLUMNS
        }
        real = attempt(state.digits_prdc, size) if size is not None else None
        levels = {name: (getattr(real, name), "real digits") for name in series} if real is not None else None
        title = "Precision, recall, density and coverage against held-out digits (± SE)"
        figures.append((over_steps_figure(x, series, levels, title, **axis), "prdc"))
    shares = {
        "smallest class share": ([q.smallest_class for _, q in measured], None),
        "largest class share": ([q.largest_class for _, q in measured], None),
    }
    uniform = {"smallest class share": (0.1, "10%, every digit as often")}
    figures.append((over_steps_figure(x, shares, uniform, "Smallest and largest class share", **axis), "cls"))
    for figure, name in figures:
        if log_x:  # ticked at the values measured (plotly's own log ticks read 2, 3, 5 for 0.02, 0.03, 0.05)
            figure.update_xaxes(type="log", tickvals=x, ticktext=[f"{v:g}" for v in x])
        st.plotly_chart(figure, key=f"{prefix}-{name}")


# ---- the Toy lab's model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToySampling:
    """How the Toy lab model's checkpoints are sampled and measured: sampler, steps, points and seed."""

    sampler: str
    steps: int
    n: int
    seed: int


ToyRow = tuple[SampleResult, dict[str, float]]  # a checkpoint's samples and their distances to fresh data


@dataclass(frozen=True)
class ToyAxis:
    """What the Toy lab model's rows vary: the checkpoint's step (Over training) or the post-hoc EMA length at one
    checkpoint (Over EMA length): the table's column, the chart's axis, a row's label, and how a row is sampled."""

    prefix: str  # of the widgets' keys and the kept rows
    column: str  # "step", "sigma_rel"
    title: str  # the chart's x axis
    label: Callable[[float], str]
    sample: Callable[[ToyRun, float, ToySampling], SampleResult]
    listed: str  # what the downloads' record calls the rows: "checkpoints", "ema_lengths"
    log: bool = False
    at: str = ""  # what the rows share, in the kept rows' names (the checkpoint whose EMA lengths they are)


def _at_step(run: ToyRun, step: float, s: ToySampling) -> SampleResult:
    return run_sampler(run, s.sampler, s.steps, s.n, seed=s.seed, path_points=1, at_step=int(step))


STEPS = ToyAxis(TOY, "step", "training step", lambda s: sources.step_label(int(s)), _at_step, "checkpoints")


def _toy_rows(run: ToyRun, x: float, axis: ToyAxis) -> Memo[ToySampling, ToyRow]:
    return Memo(f"{axis.prefix}-{run.name}-{axis.at}{x}")


def toy_controls(run: ToyRun, prefix: str = TOY) -> ToySampling:
    c1, c2, c3, c4 = st.columns(4)
    names = list(SAMPLERS)
    sampler = c1.selectbox(
        "Sampler", names, names.index("heun"), format_func=lambda n: SAMPLERS[n].title, key=f"{prefix}-sampler"
    )
    top = min(1000, run.schedule.num_steps)
    steps = int(
        follow_range(
            c2,
            "number_input",
            "Sampling steps",
            1,
            top,
            min(32, top),
            key=f"{prefix}-steps",
            because=f"the run's T = {run.schedule.num_steps:,}",
            help="The sampler's steps from noise to data, the same for every checkpoint.",
        )
    )
    n = int(c3.number_input("Points", 100, 5000, 2000, 100, key=f"{prefix}-n"))
    seed = int(c4.number_input("Seed", 0, 2**31 - 100, 0, key=f"{prefix}-seed"))
    return ToySampling(sampler, steps, n, seed)


def _sample_rows(run: ToyRun, xs: list[float], settings: ToySampling, axis: ToyAxis) -> None:
    """Each row sampled from the same noise and measured, with one progress bar and a Stop for all; each row's
    result is kept as soon as it is done; those of other rows and runs go."""
    forget_others(f"{axis.prefix}-", [f"{run.name}-{axis.at}{x}" for x in xs])
    with state.progress("Sampling…", "Keeps the rows done so far.", axis.prefix) as report:
        for k, x in enumerate(xs):
            result = axis.sample(run, x, settings)
            _toy_rows(run, x, axis).put(settings, (result, distances(result, run, settings.seed)))
            report((k + 1) / len(xs), axis.label(x))


def toy_over_training(run: ToyRun, steps: list[int]) -> None:
    toy_rows_view(run, steps, STEPS, {})


def toy_rows_view(run: ToyRun, xs: list[float], axis: ToyAxis, study: dict[str, object]) -> None:
    """The Toy lab model's rows along `axis`: controls, Sample and measure, the clouds side by side, SW2 and MMD
    against the axis read against fresh data's band, the table and the downloads (their record naming `study`)."""
    settings = toy_controls(run, axis.prefix)
    if st.button("Sample and measure", type="primary", key=f"{axis.prefix}-go"):
        run_job("toy checkpoints", _sample_rows, run, xs, settings, axis)
    done = [(x, found) for x in xs if (found := _toy_rows(run, x, axis).latest()) is not None]
    if not done:
        return
    if any(made_for != settings for _, (made_for, _) in done):
        st.info("Some rows are from earlier settings: press **Sample and measure** for the current ones.")
    data = run.cloud.points[:5000].double().numpy()
    panels = [(axis.label(x), r.samples.numpy()) for x, (_, (r, _)) in done]
    st.plotly_chart(clouds_over_steps(panels, data), key=f"{axis.prefix}-clouds")
    rows = [
        {axis.column: x, "SW2": d["swd"], "MMD": d["mmd"], "seconds": round(r.seconds, 3), "NFE": r.nfe}
        for x, (_, (r, d)) in done
    ]
    table = pd.DataFrame(rows)
    series = {"SW2": (table["SW2"], None), "MMD": (table["MMD"], None)}
    title = "Distance to fresh data (standardised units)"
    fig = over_steps_figure(table[axis.column], series, None, title, log_y=True, x_title=axis.title)
    if axis.log:
        fig.update_xaxes(type="log", tickvals=list(table[axis.column]), ticktext=[f"{x:g}" for x in table[axis.column]])
    last = done[-1][1][1][0]
    bands = reference(last, run, last.label["seed"])  # every row of the settings shown has this size
    for k, (name, key) in enumerate((("SW2", "swd"), ("MMD", "mmd"))):
        add_band(fig, bands[key], f"{name}: {bands[key].describe()}", SERIES_COLORS[k])
    ends = [v for band in bands.values() for v in (band.low, band.high)]
    fig.update_yaxes(**log_axis([*table["SW2"], *table["MMD"], *ends]))  # the bands in sight too
    st.plotly_chart(fig, key=f"{axis.prefix}-dist")
    st.caption(
        f"Shaded: what each distance reads for data itself, at the samples' own size: {bands['swd'].describe()}; "
        f"SW2 {bands['swd'].span()}, MMD {bands['mmd'].span()}. A checkpoint inside its band is as close to the "
        "data as fresh data is at this sample size."
    )
    st.dataframe(table.round(4), hide_index=True, width="stretch")
    everything = np.concatenate([data[:, :2], *[p[:, :2] for _, p in panels]])
    box = (np.quantile(everything, 0.002, axis=0), np.quantile(everything, 0.998, axis=0))
    made = {m: [x for x, (n, _) in done if n == m] for m in dict.fromkeys(m for _, (m, _) in done)}
    records = [_toy_record(run, sampling, {**study, axis.listed: shown}) for sampling, shown in made.items()]
    downloads([(f"{run.name} {t}", cloud_image(p, data, box)) for t, p in panels], rows, axis.prefix, False, records)


def _toy_record(run: ToyRun, sampling: ToySampling, study: dict[str, object]) -> dict:
    """The record of the Toy lab model's rows (`study`: which checkpoints or lengths), sampled with `sampling`
    (core/labs/toy.run_sampler: trailing steps, no clipping) and measured against fresh data
    (core/labs/provenance.py)."""
    settings = SamplerSettings(
        sampler=sampling.sampler, steps=sampling.steps, seed=sampling.seed, batch=sampling.n, clip=False
    )
    study = {
        "page": "Compare checkpoints: over training",
        "run": run.name,
        **study,
        "points": sampling.n,
        "measures": "SW2 and MMD to fresh data",
    }
    return provenance.record(f"the Toy lab's model {run.name} (this session)", settings, study=study)
