"""The Samplers page's Step grid tab: a grid searched for this model, sampler and step count against a fine
teacher run, beside the hand-made grids, and a button that puts it into the sidebar's typed grid."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from core.diffusion.grids import format_grid
from core.diffusion.samplers import SAMPLERS
from core.labs.samplers import (
    SEARCH_IMAGES,
    TEACHER,
    TYPED,
    GridSearch,
    GridSearcher,
    SamplerSettings,
    search_seconds,
)
from ui.common.charts import grid_strip
from ui.common.live import job_estimate, progress_and_stop
from ui.common.memo import Memo
from ui.common.tables import show_table
from ui.common.widgets import run_job
from ui.samplers.controls import guide_of
from zoo.loaders import LoadedModel


@dataclass(frozen=True)
class SearchKey:
    model: str
    settings: SamplerSettings


FOUND = Memo[SearchKey, GridSearch]("smp-grid-search")
COLOURS = {"trailing": "#e4572e", "karras": "#4c78a8", "log-snr": "#f58518", "searched": "#111111"}


def _search(loaded: LoadedModel, settings: SamplerSettings, images: int) -> None:
    with progress_and_stop("Running the teacher…", "smp-grid-stop", "Ends the search.") as bar:
        searcher = GridSearcher(loaded, settings, images, guide_of(settings))
        found = searcher.search(progress=lambda done, planned: bar.show(done / planned, f"Point {done} of {planned}"))
    FOUND.put(SearchKey(loaded.name, settings), found)


def _use(found: GridSearch) -> None:
    """Put the searched grid into the sidebar's typed grid (a callback: it runs before the widgets exist)."""
    st.session_state["smp-spacing"] = TYPED
    st.session_state["smp-typed"] = format_grid(found.grids["searched"])


def grid_search_tab(loaded: LoadedModel, settings: SamplerSettings) -> None:
    solver, steps = TEACHER
    spec = SAMPLERS[settings.sampler]
    st.markdown(
        f"Search the step grid for **this model, {spec.title} and {settings.steps} steps**: the grid whose samples "
        f"from a few warm-up noises come closest to a fine teacher's ({SAMPLERS[solver].title} on {steps} log-SNR "
        "steps, from the same noises). It starts from the best of the trailing, Karras and log-SNR grids and moves "
        "each inner point in turn along log σ (the ends stay), running the sampler 20 times per inner point: few "
        "steps search fast."
    )
    if spec.injects_noise(settings.options):
        st.info(f"{spec.title} draws fresh noise as set: pick a deterministic sampler (or its noise at 0) to search.")
        return
    settings = replace(settings, spacing="trailing", grid=None, batch=1, seed=0)  # what the search depends on
    images = st.slider("Warm-up images", 2, 32, SEARCH_IMAGES, key="smp-grid-images")
    fits = job_estimate(lambda: search_seconds(loaded, settings, int(images)), "searching")
    if st.button("Search", type="primary", key="smp-grid-go", disabled=not fits):
        run_job("grid search", _search, loaded, settings, int(images))
    found = FOUND.get(SearchKey(loaded.name, settings))
    if found is None:
        st.caption("Nothing searched for these settings yet.")
        return
    rows = [
        {"Grid": name, "RMS distance to the teacher": round(err, 4), "σ": format_grid(found.grids[name])}
        for name, err in found.errors.items()
    ]
    show_table(rows, width="stretch", key="smp-grid-table")
    strip = [(name, grid, COLOURS[name], name == "searched") for name, grid in found.grids.items()]
    st.plotly_chart(grid_strip(strip, height=230), key="smp-grid-points")
    st.caption(
        f"On {found.images} warm-up images, searched in {found.seconds:.1f} s. A grid fitted to a few images can "
        "flatter itself: Generate with it (other seeds) and compare."
    )
    st.button("Use this grid", key="smp-grid-use", on_click=_use, args=(found,), help="Sets Spacing to typed.")
