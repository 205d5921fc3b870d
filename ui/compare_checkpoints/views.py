"""The Compare checkpoints page's side-by-side tab (2-4 checkpoints from anywhere), and what both tabs share:
the sampling controls, the MNIST quality measure and the downloads."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.data.images import enlarge, png_bytes, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs import provenance
from core.labs.compare import MAX_QUALITY_SAMPLES, PRDC_K, captioned, check_same_shape, is_mnist, settings_for
from core.labs.samplers import ImageModel
from core.text import plain_label
from ui.common.live import Throttle
from ui.common.tables import show_table
from ui.common.widgets import run_job
from ui.compare_checkpoints import sources, state
from zoo.loaders import LoadedModel

Settings = tuple[str | None, int, int, int, int | None]  # sampler (None: each folder's own), steps, seed, images, class
OWN = "own"  # the sampler choice that leaves each folder its own scheduler's (core/labs/compare.settings_for)
MAX_SEED = 2**31 - 100  # the seed box's
SIDE_IMAGES = 36  # the most images per checkpoint side by side


def controls(prefix: str, max_images: int = SIDE_IMAGES, images: int = 16) -> Settings:
    """Sampler, steps, seed, images and class: the same for every checkpoint compared; by default each folder with
    its own scheduler config keeps its sampler, and the others take DPM-Solver++(2M)."""
    c1, c2, c3, c4, c5 = st.columns([1.4, 1, 1, 1.4, 1])
    names = [OWN, *SAMPLERS]
    choice = c1.selectbox(
        "Sampler",
        names,
        0,
        format_func=lambda n: "Each folder's own, else DPM-Solver++(2M)" if n == OWN else SAMPLERS[n].title,
        key=f"{prefix}-sampler",
        help="A folder with its own diffusers scheduler config is sampled as its pipeline would be (sampler, "
        "spacing, clipping, ...); a sampler named here replaces its sampler alone.",
    )
    sampler = None if choice == OWN else choice
    steps = int(c2.number_input("Steps", 1, 1000, 20, key=f"{prefix}-steps"))
    seed = int(c3.number_input("Seed", 0, MAX_SEED, 0, key=f"{prefix}-seed"))
    batch = c4.slider("Images", 1, max_images, images, key=f"{prefix}-batch")
    choice = c5.selectbox("Class", ["none", *range(10)], key=f"{prefix}-class", help="For class-conditional models.")
    return sampler, steps, seed, batch, None if choice == "none" else int(choice)


def sampled_with(model: LoadedModel, settings: Settings) -> str:
    """The sentence of how `model` is sampled under the page's settings: what settings_for gives it."""
    s = settings_for(model, *settings)
    own = model.scheduler is not None and s.sampler == model.scheduler.sampler
    end = "" if s.to_zero else ", ending at the smallest σ"
    made_for = model.scheduler.steps if model.scheduler is not None else None
    steps = f", its own {s.steps} step{'s' * (s.steps != 1)}" if made_for is not None and s.steps == made_for else ""
    how = f"{SAMPLERS[s.sampler].title}{' (its own)' if own else ''}{steps}, {s.spacing} spacing{end}"
    if s.thresholding is not None:
        x0 = "dynamic thresholding"
    else:
        x0 = f"x0 clipped to ±{s.clip_range:g}" if s.clip else "no clipping"
    return f"Sampled with {how}, {x0}."


def same_shape(models: Mapping[str, ImageModel], titles: Mapping[str, str]) -> bool:
    """Whether the models can share noise; if not, the sentence saying why is shown."""
    try:
        check_same_shape({titles[n]: m.sample_shape for n, m in models.items()})
    except BadInputError as e:
        st.error(str(e))
        return False
    return True


def quality(mnist: Mapping[str, str], prefix: str, measure) -> dict[str, dict[str, object]]:
    """The MNIST checkpoints' Measure button (`measure(n)` runs it) and table, titled by `mnist` (name ->
    title); returns each measured checkpoint's row by name."""
    if not mnist:
        return {}
    st.caption(
        "FD-LeNet: the Fréchet distance to held-out digits in the bundled classifier's features (the FID formula, "
        "not Inception FID); lower is better. In the same features, against as many held-out digits as samples, "
        f"with balls through each point's {PRDC_K}th nearest neighbour in its own set: **precision**, the share of "
        "samples inside some digit's ball (they look like digits), and **recall**, the share of digits inside some "
        "sample's ball (the samples reach them) (Kynkäänniemi et al. 2019); **density**, the digits' balls holding a "
        f"sample, per sample over {PRDC_K} (about 1 for real digits; above it, samples crowd where digits are dense), "
        "and **coverage**, the share of digits whose ball holds a sample (Naeem et al. 2020); each with its standard "
        "error. The real digits' row is what each reads for real digits at this size. Read precision and density "
        "with the others: LeNet puts noise amid the digits, inside many of their balls, where only recall, coverage "
        "and FD-LeNet see it."
    )
    n = st.slider("Samples per checkpoint", 100, MAX_QUALITY_SAMPLES, 300, 100, key=f"{prefix}-n")
    clicked = st.button("Measure", key=f"{prefix}-measure")
    note, table = st.empty(), st.empty()
    if clicked:
        throttle = Throttle(0.5)

        def redraw() -> None:
            if throttle.ready():
                _quality_table(table, mnist, prefix)

        with state.redrawing(redraw):
            run_job("checkpoint measure", measure, n)
    if stopped := state.stopped(prefix):
        note.warning(stopped)
    return _quality_table(table, mnist, prefix)


def _quality_table(slot, mnist: Mapping[str, str], prefix: str) -> dict[str, dict[str, object]]:
    """The measured checkpoints' rows (and, measured the same way, real digits' row) drawn into `slot`; the rows
    by name."""
    rows = {name: state.quality_row(mnist[name], q) for name in mnist if (q := state.quality_of(name, prefix))}
    if rows:
        sizes = {row["samples"] for row in rows.values()}
        reference = state.reference_rows(sizes.pop() if len(sizes) == 1 else None)
        show_table([*rows.values(), *reference], slot, width="stretch")  # the reference row: dashes where it has none
    return rows


def downloads(
    panels: list[tuple[str, object]],
    rows: list[dict[str, object]],
    prefix: str,
    stack: bool,
    records: list[dict] | None = None,
) -> None:
    """The grid (PNG, captioned panels side by side or stacked) and the table (CSV), built when clicked; each
    carries the `records` of the runs it shows (core/labs/provenance.py: a PNG text chunk, a CSV comment line)."""
    left, right = st.columns(2)
    if panels:
        grid = lambda: (  # noqa: E731 (built only when clicked)
            png_bytes(captioned(panels, stack=stack))
            if not records
            else provenance.png(captioned(panels, stack=stack), records)
        )
        left.download_button(
            "Download the grid (PNG)", grid, "checkpoints.png", "image/png", key=f"{prefix}-png", on_click="ignore"
        )
    if rows:
        csv = pd.DataFrame(rows).to_csv(index=False)
        csv = (csv if not records else provenance.csv(csv, records)).encode()
        right.download_button(
            "Download the table (CSV)", csv, "checkpoints.csv", "text/csv", key=f"{prefix}-csv", on_click="ignore"
        )


def side_by_side() -> None:
    st.markdown("Two to four models, one sampler, the same starting noise for all: what differs is the checkpoint.")
    loaded, failures = sources.pick()
    settings = controls("ck")
    titles = {name: model.entry.title for name, model in loaded.items()}
    if not same_shape(loaded, titles):
        return
    if len(loaded) + len(failures) < 2:
        st.info("Pick at least two checkpoints.")
        return
    if st.button("Sample", type="primary", key="ck-go"):
        run_job("checkpoint sampling", state.sample_all, loaded, *settings)
    columns = st.columns(len(loaded) + len(failures))
    for col, (label, message) in zip(columns[len(loaded) :], failures.items(), strict=True):
        col.markdown(f"**{plain_label(label)}**")  # a typed repo id or path may be anything
        col.error(message)
    panels, rows, records = [], {}, []
    for col, (name, model) in zip(columns, loaded.items(), strict=False):
        source = plain_label(model.entry.source, 120)
        col.markdown(f"**{plain_label(model.entry.title)}**")
        col.caption(f"{model.param_count / 1e6:.2f}M parameters · {model.file_bytes / 1e6:.1f} MB · {source}")
        col.caption(sampled_with(model, settings))
        if model.scheduler is not None:
            col.caption(model.scheduler.caption())
            for sentence in model.scheduler.unfollowed:
                col.warning(f"Not followed: {sentence}.", icon=":material/warning:")
        result = state.result_of(name)
        if result is None:
            continue
        grid = tile(to_uint8(result.images))
        col.image(enlarge(grid, 320), width="stretch")
        speed = result.settings.batch / result.seconds
        col.caption(f"{result.seconds:.2f} s · {speed:.1f} images/s · NFE {result.settings.nfe}")
        if not state.is_current(name, model, *settings):
            col.info("From earlier settings: press **Sample** for the current ones.")
        panels.append((model.entry.title, enlarge(grid, 200)))
        records.append(provenance.record(model, result.settings, spec=name))
        rows[name] = {
            "checkpoint": model.entry.title,
            "source": source,
            "parameters": model.param_count,
            "file MB": round(model.file_bytes / 1e6, 2),
            "seconds": round(result.seconds, 3),
            "images/s": round(speed, 2),
            "NFE": result.settings.nfe,
            "sampler": SAMPLERS[result.settings.sampler].title,
            "spacing": result.settings.spacing,
        }
    mnist = {name: titles[name] for name, model in loaded.items() if is_mnist(model)}
    if mnist:
        st.subheader("Quality (MNIST checkpoints)")
    sampler, steps, seed, _, label = settings
    measure = lambda n: state.measure_all({k: loaded[k] for k in mnist}, sampler, steps, seed, n, label)  # noqa: E731
    measured = quality(mnist, "ck", measure)
    for name, row in rows.items():  # one table: speed and size, and the quality where it was measured
        row.update({k: v for k, v in measured.get(name, {}).items() if k != "checkpoint"})
    downloads(panels, list(rows.values()), "ck", stack=False, records=records)
