"""The Compare checkpoints page's two tabs: side by side (2-4 checkpoints from anywhere) and over training (one
run's checkpoints at chosen steps, a row per step, with the quality measure against the step)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.data.images import enlarge, png_bytes, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.errors import AtlasError
from core.labs.compare import MAX_QUALITY_SAMPLES, captioned, is_mnist
from core.text import plain_label
from ui.common.cache import local_model
from ui.common.widgets import attempt
from ui.compare_checkpoints import checkpoints, sources
from ui.compare_checkpoints.figures import over_steps_figure
from zoo.loaders import LoadedModel


def controls(prefix: str, max_images: int = 36, images: int = 16) -> tuple[str, int, int, int, int | None]:
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


def _same_shape(loaded: Mapping[str, LoadedModel]) -> bool:
    if len({m.sample_shape for m in loaded.values()}) > 1:
        shapes = ", ".join(f"{plain_label(n)}: {'x'.join(map(str, m.sample_shape))}" for n, m in loaded.items())
        st.error(f"These checkpoints make images of different shapes, so they cannot share noise ({shapes}).")
        return False
    return True


def _quality(models: Mapping[str, LoadedModel], settings: tuple, prefix: str) -> list[dict[str, object]]:
    """The MNIST checkpoints' Measure button and table (FD-LeNet, class shares); returns the table's rows."""
    mnist = {n: m for n, m in models.items() if is_mnist(m)}
    if not mnist:
        return []
    sampler, steps, seed, _, label = settings
    st.caption(
        "FD-LeNet: the Fréchet distance to held-out digits in the bundled classifier's features (the FID formula, "
        "not Inception FID); lower is better."
    )
    n = st.slider("Samples per checkpoint", 100, MAX_QUALITY_SAMPLES, 300, 100, key=f"{prefix}-n")
    if st.button("Measure", key=f"{prefix}-measure"):
        attempt(checkpoints.measure_all, mnist, sampler, steps, seed, n, label, prefix)
    rows = checkpoints.quality_rows(list(mnist), prefix)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    return rows


def _downloads(panels: list[tuple[str, object]], rows: list[dict[str, object]], prefix: str, stack: bool) -> None:
    left, right = st.columns(2)
    if panels:
        grid = lambda: png_bytes(captioned(panels, stack=stack))  # noqa: E731 (built only when clicked)
        left.download_button("Download the grid (PNG)", grid, "checkpoints.png", "image/png", key=f"{prefix}-png",
                             on_click="ignore")  # fmt: skip
    if rows:
        csv = pd.DataFrame(rows).to_csv(index=False).encode()
        right.download_button("Download the table (CSV)", csv, "checkpoints.csv", "text/csv", key=f"{prefix}-csv",
                              on_click="ignore")  # fmt: skip


def side_by_side() -> None:
    st.markdown("Two to four models, one sampler, the same starting noise for all: what differs is the checkpoint.")
    loaded, failures = sources.pick()
    settings = controls("ck")
    if not _same_shape(loaded):
        return
    if len(loaded) + len(failures) < 2:
        st.info("Pick at least two checkpoints.")
        return
    if st.button("Sample", type="primary", key="ck-go"):
        attempt(checkpoints.sample_all, loaded, *settings)
    columns = st.columns(len(loaded) + len(failures))
    for col, (name, message) in zip(columns[len(loaded) :], failures.items(), strict=True):
        col.markdown(f"**{plain_label(name)}**")  # a typed repo id or path may be anything
        col.error(message)
    panels, rows = [], []
    for col, (name, model) in zip(columns, loaded.items(), strict=False):
        col.markdown(f"**{model.entry.title}**")
        col.caption(
            f"{model.param_count / 1e6:.2f}M parameters · {model.file_bytes / 1e6:.1f} MB · {model.entry.source}"
        )
        result = checkpoints.result_of(name)
        if result is None:
            continue
        grid = tile(to_uint8(result.images))
        col.image(enlarge(grid, 320), width="stretch")
        speed = result.settings.batch / result.seconds
        col.caption(f"{result.seconds:.2f} s · {speed:.1f} images/s · NFE {result.settings.nfe}")
        if not checkpoints.is_current(result, model, *settings):
            col.info("From earlier settings: press **Sample** for the current ones.")
        panels.append((model.entry.title, enlarge(grid, 200)))
        rows.append({"checkpoint": model.entry.title, "source": model.entry.source, "parameters": model.param_count,
                     "file MB": round(model.file_bytes / 1e6, 2), "seconds": round(result.seconds, 3),
                     "images/s": round(speed, 2), "NFE": result.settings.nfe})  # fmt: skip
    if loaded and any(is_mnist(m) for m in loaded.values()):
        st.subheader("Quality (MNIST checkpoints)")
    quality = {q["checkpoint"]: q for q in _quality(loaded, settings, "ck")}
    titles = {n: m.entry.title for n, m in loaded.items()}
    for row in rows:  # one table: speed and size, and the quality where it was measured
        name = next((n for n, t in titles.items() if t == row["checkpoint"]), None)
        row.update({k: v for k, v in quality.get(name, {}).items() if k != "checkpoint"})
    _downloads(panels, rows, "ck", stack=False)


def pixel_over_training(run_name: str, folders: Mapping[int, object]) -> None:
    """A row per step from the same noise, and FD-LeNet and class shares against the step (MNIST runs)."""
    loaded, failures = {}, {}
    for step, folder in folders.items():
        name = sources.step_label(step)
        try:
            loaded[name] = local_model(str(folder))
        except AtlasError as e:  # shown in its row; the other steps still compare
            failures[name] = str(e)
    settings = controls("ot", max_images=16, images=8)
    if not _same_shape(loaded):
        return
    if st.button("Sample", type="primary", key="ot-go"):
        attempt(checkpoints.sample_all, loaded, *settings, "ot")
    for name, message in failures.items():
        st.error(f"{name}: {message}")
    panels = []
    for name in loaded:
        result = checkpoints.result_of(name, "ot")
        if result is None:
            continue
        strip = enlarge(tile(to_uint8(result.images), ncols=len(result.images)), 56)
        left, right = st.columns([1, 8], vertical_alignment="center")
        left.markdown(f"**{name}**")
        right.image(strip, width="stretch")
        panels.append((f"{run_name} {name}", strip))
    if any(is_mnist(m) for m in loaded.values()):
        st.subheader("Quality against the step")
    rows = _quality(loaded, settings, "ot")
    measured = [(step, checkpoints.quality_of(sources.step_label(step), "ot")) for step in folders]
    measured = [(s, q) for s, q in measured if q is not None]
    if measured:
        steps = [s for s, _ in measured]
        fd = ([q.fd_lenet for _, q in measured], [q.fd_se for _, q in measured])
        half, floor = st.session_state.get("ot-floor", (0, None))
        floors = {"FD-LeNet": (floor, f"held-out digits, {half} vs {half}")} if floor is not None else None
        title = "FD-LeNet to held-out digits (± bootstrap SE)"
        st.plotly_chart(over_steps_figure(steps, {"FD-LeNet": fd}, floors, title), key="ot-fd")
        shares = {"smallest class share": ([q.smallest_class for _, q in measured], None),
                  "largest class share": ([q.largest_class for _, q in measured], None)}  # fmt: skip
        title = "Smallest and largest class share"
        uniform = {"smallest class share": (0.1, "10%, every digit as often")}
        st.plotly_chart(over_steps_figure(steps, shares, uniform, title), key="ot-cls")
    _downloads(panels, rows, "ot", stack=True)
