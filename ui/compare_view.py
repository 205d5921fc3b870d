"""Drawing a same-seed comparison: one row per (checkpoint, sampler), one column per step count."""

from __future__ import annotations

import streamlit as st

from core.grids import make_grid, to_uint8, upscale_nearest
from core.samplers import SAMPLERS
from ui.compare import CompareCell


def show_comparison(cells: list[CompareCell]) -> None:
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
            grid = upscale_nearest(make_grid(to_uint8(cell.images), ncols=4), 256)
            col.image(grid, caption=caption, width="stretch")
