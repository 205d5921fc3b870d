"""Same-seed comparisons on the Samplers page: run one (with a progress bar, kept in the session), and draw it,
one row per (checkpoint, sampler), one column per step count."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.data.images import enlarge, tile, to_uint8
from core.diffusion.samplers import SAMPLERS
from core.labs.compare import CompareCell, compare, is_mnist
from core.labs.pixel import SamplerSettings
from ui.common.cache import zoo_model
from zoo.loaders import LoadedModel

CELLS, CLASSIFIER = "cmp-cells", "mnist-lenet"


def run_comparison(
    models: Sequence[LoadedModel], samplers: Sequence[str], steps: Sequence[int], settings: SamplerSettings
) -> list[CompareCell]:
    """Every cell from the same seeds, MNIST models read by the bundled classifier."""
    bar = st.progress(0.0, text="Comparing…")
    classifier = zoo_model(CLASSIFIER).module if any(is_mnist(m) for m in models) else None
    cells = st.session_state[CELLS] = compare(models, samplers, sorted(steps), settings, classifier, bar.progress)
    return cells


def show_comparison() -> None:
    cells: list[CompareCell] = st.session_state.get(CELLS) or []
    rows: dict[tuple[str, str], list[CompareCell]] = {}
    for cell in cells:
        rows.setdefault((cell.model, cell.sampler), []).append(cell)
    several_models = len({c.model for c in cells}) > 1
    for (model, sampler), row in rows.items():
        st.markdown(f"**{SAMPLERS[sampler].title}**" + (f" · {model}" if several_models else ""))
        for col, cell in zip(st.columns(max(len(r) for r in rows.values())), row, strict=False):
            caption = f"{cell.steps} steps · NFE {cell.nfe} · {cell.seconds:.2f} s"
            if cell.metric:
                caption += f" · {cell.metric}"
            grid = enlarge(tile(to_uint8(cell.images), ncols=4), 256)
            col.image(grid, caption=caption, width="stretch")
