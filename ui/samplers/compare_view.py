"""Same-seed comparisons on the Samplers page: run one (with a progress bar, kept in the session), and draw it,
one row per (checkpoint, sampler), one column per step count."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.data.images import enlarge, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.labs.compare import CompareCell, compare_cells, is_mnist
from core.labs.samplers import SamplerSettings
from core.training.budget import TimeLimitError, limited
from ui.common.cache import zoo_model
from ui.common.live import progress_and_stop
from ui.samplers.controls import guide_of
from zoo.loaders import LoadedModel

CELLS, PLANNED, CLASSIFIER = "cmp-cells", "cmp-planned", "mnist-lenet"
SAME_UPDATE = (("ddpm", "euler_ancestral"), ("ddim", "euler"))  # at their defaults (eta 1, eta 0)


def run_comparison(
    models: Sequence[LoadedModel], samplers: Sequence[str], steps: Sequence[int], settings: SamplerSettings
) -> list[CompareCell]:
    """Every cell from the same seeds (MNIST models read by the bundled classifier), with a progress bar and a
    Stop; the cells are kept as they finish, so a Stop, or the server's limit per job (said), keeps those done."""
    total = len(models) * len(samplers) * len(steps)
    cells: list[CompareCell] = []
    st.session_state[CELLS], st.session_state[PLANNED] = cells, total
    classifier = zoo_model(CLASSIFIER).module if any(is_mnist(m) for m in models) else None
    try:
        with limited(), progress_and_stop("Comparing…", "cmp-stop", "Keeps the cells done so far.") as bar:
            for cell in compare_cells(models, samplers, sorted(steps), settings, classifier, guide_of(settings)):
                cells.append(cell)
                done = len(cells)
                bar.show(done / total, f"{done} of {total} cells · {cell.model}: {cell.sampler}, {cell.steps} steps")
    except TimeLimitError as stopped:
        st.warning(str(stopped))
    return cells


def show_comparison() -> None:
    """The cells as a table of images: a row per (checkpoint, sampler), a column per step count."""
    cells: list[CompareCell] = st.session_state.get(CELLS) or []
    if not cells:
        return
    planned = st.session_state.get(PLANNED, len(cells))
    if len(cells) < planned:
        st.warning(f"Stopped after {len(cells)} of {planned} cells; these are the ones that finished.")
    rows: dict[tuple[str, str], list[CompareCell]] = {}
    for cell in cells:
        rows.setdefault((cell.model, cell.sampler), []).append(cell)
    step_counts = sorted({c.steps for c in cells})
    several_models = len({c.model for c in cells}) > 1
    header = st.columns([1.2] + [3] * len(step_counts))
    header[0].markdown("**Sampler**")
    for col, n in zip(header[1:], step_counts, strict=True):
        col.markdown(f"**{n} steps**")
    for (model, sampler), row in rows.items():
        cols = st.columns([1.2] + [3] * len(step_counts))
        cols[0].markdown(f"{SAMPLERS[sampler].title}" + (f"  \n*{model}*" if several_models else ""))
        by_steps = {c.steps: c for c in row}
        for col, n in zip(cols[1:], step_counts, strict=True):
            if n in by_steps:
                cell = by_steps[n]
                caption = f"NFE {cell.nfe} · {cell.seconds:.2f} s" + (f" · {cell.metric}" if cell.metric else "")
                col.image(enlarge(tile(to_uint8(cell.images), ncols=4), 256), caption=caption, width="stretch")
    twins = [
        f"{SAMPLERS[a].title} and {SAMPLERS[b].title}" for a, b in SAME_UPDATE if {a, b} <= {c.sampler for c in cells}
    ]
    if twins:
        st.caption(
            f"Identical cells are right, not a bug: {' and '.join(twins)} are the same update in the "
            "variance-exploding coordinates every sampler here uses (at their default settings), so from the same "
            "noise they give the same images, pixel for pixel."
        )
    if any(c.metric for c in cells):
        st.caption(
            "Under each MNIST cell, the bundled classifier's reading: with a class asked for, how many images it "
            "reads as that class; without one, its mean confidence (its highest class probability, averaged over "
            "the images) and how many different digits it sees."
        )
