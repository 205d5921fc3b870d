"""The Compare checkpoints page's side-by-side tab (2-4 checkpoints from anywhere), and what both tabs share:
the sampling controls, the MNIST quality measure and the downloads."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.data.images import enlarge, png_bytes, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs.compare import MAX_QUALITY_SAMPLES, PRDC_K, captioned, check_same_shape, is_mnist
from core.labs.samplers import ImageModel
from core.text import plain_label
from ui.common.live import Throttle
from ui.common.tables import show_table
from ui.common.widgets import run_job
from ui.compare_checkpoints import sources, state

Settings = tuple[str, int, int, int, int | None]  # sampler, steps, seed, images, class


def controls(prefix: str, max_images: int = 36, images: int = 16) -> Settings:
    """Sampler, steps, seed, images and class: the same for every checkpoint compared."""
    c1, c2, c3, c4, c5 = st.columns([1.4, 1, 1, 1.4, 1])
    names = list(SAMPLERS)
    sampler = c1.selectbox(
        "Sampler", names, names.index("dpmpp_2m"), format_func=lambda n: SAMPLERS[n].title, key=f"{prefix}-sampler"
    )
    steps = int(c2.number_input("Steps", 1, 1000, 20, key=f"{prefix}-steps"))
    seed = int(c3.number_input("Seed", 0, 2**31 - 100, 0, key=f"{prefix}-seed"))
    batch = c4.slider("Images", 1, max_images, images, key=f"{prefix}-batch")
    choice = c5.selectbox("Class", ["none", *range(10)], key=f"{prefix}-class", help="For class-conditional models.")
    return sampler, steps, seed, batch, None if choice == "none" else int(choice)


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


def downloads(panels: list[tuple[str, object]], rows: list[dict[str, object]], prefix: str, stack: bool) -> None:
    """The grid (PNG, captioned panels side by side or stacked) and the table (CSV), built when clicked."""
    left, right = st.columns(2)
    if panels:
        grid = lambda: png_bytes(captioned(panels, stack=stack))  # noqa: E731 (built only when clicked)
        left.download_button(
            "Download the grid (PNG)", grid, "checkpoints.png", "image/png", key=f"{prefix}-png", on_click="ignore"
        )
    if rows:
        csv = pd.DataFrame(rows).to_csv(index=False).encode()
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
    panels, rows = [], {}
    for col, (name, model) in zip(columns, loaded.items(), strict=False):
        source = plain_label(model.entry.source, 120)
        col.markdown(f"**{plain_label(model.entry.title)}**")
        col.caption(f"{model.param_count / 1e6:.2f}M parameters · {model.file_bytes / 1e6:.1f} MB · {source}")
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
        rows[name] = {
            "checkpoint": model.entry.title,
            "source": source,
            "parameters": model.param_count,
            "file MB": round(model.file_bytes / 1e6, 2),
            "seconds": round(result.seconds, 3),
            "images/s": round(speed, 2),
            "NFE": result.settings.nfe,
        }
    mnist = {name: titles[name] for name, model in loaded.items() if is_mnist(model)}
    if mnist:
        st.subheader("Quality (MNIST checkpoints)")
    sampler, steps, seed, _, label = settings
    measure = lambda n: state.measure_all({k: loaded[k] for k in mnist}, sampler, steps, seed, n, label)  # noqa: E731
    measured = quality(mnist, "ck", measure)
    for name, row in rows.items():  # one table: speed and size, and the quality where it was measured
        row.update({k: v for k, v in measured.get(name, {}).items() if k != "checkpoint"})
    downloads(panels, list(rows.values()), "ck", stack=False)
