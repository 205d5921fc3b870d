"""The Ground truth page's Step grids tab: each deterministic sampler on each grid against the exact ODE end point,
and where each grid puts its steps."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import grids
from core.labs.ground_truth.noise import SIGMA_MAX
from ui.common.charts import LOG_AXIS, MARGIN, grid_strip
from ui.common.tables import show_table
from ui.common.widgets import attempt, run_job, typed_grid
from ui.ground_truth import state
from ui.ground_truth.mixture import Mixture
from ui.ground_truth.views import stop_row

GRID_COLOURS = {
    "karras": "#4c78a8",
    "log-snr": "#f58518",
    "uniform": "#9d9d9d",
    "ays": "#54a24b",
    "gits": "#b279a2",
    "optimised": "#e45756",
    grids.TYPED: "#111111",
}
TABLE_NFES = (3, 4, 5, 6, 8, 10)


def _title(grid: str) -> str:
    return "typed" if grid == grids.TYPED else grids.GRIDS[grid]


def error_figure(study: grids.GridStudy) -> go.Figure:
    """Error against NFE (log-log), one panel per sampler, one line per grid (its fitted order in the hover)."""
    samplers = list(dict.fromkeys(c.sampler for c in study.curves))
    cols = min(3, len(samplers))
    rows = math.ceil(len(samplers) / cols)
    fig = make_subplots(
        rows, cols, subplot_titles=[SAMPLERS[s].title for s in samplers], horizontal_spacing=0.05, vertical_spacing=0.12
    )
    shown: set[str] = set()
    for curve in study.curves:
        k = samplers.index(curve.sampler)
        order = "–" if curve.order is None else f"{curve.order:.2f}"
        typed = curve.grid == grids.TYPED
        fig.add_trace(
            go.Scatter(
                x=curve.nfes,
                y=curve.errors,
                mode="markers" if typed else "lines+markers",
                name=_title(curve.grid),
                legendgroup=curve.grid,
                showlegend=curve.grid not in shown,
                marker={
                    "color": GRID_COLOURS[curve.grid],
                    "symbol": "x" if typed else "circle",
                    "size": 9 if typed else 6,
                },
                line={"color": GRID_COLOURS[curve.grid], "dash": "dot" if curve.grid in grids.FITTED else "solid"},
                hovertemplate=f"{_title(curve.grid)} (order {order})<br>NFE %{{x}}<br>error %{{y:.3g}}<extra></extra>",
            ),
            k // cols + 1,
            k % cols + 1,
        )
        shown.add(curve.grid)
    fig.update_xaxes(**LOG_AXIS)
    fig.update_yaxes(type="log", exponentformat="power", dtick=1)
    fig.update_xaxes(title_text="NFE", row=rows)
    fig.update_yaxes(title_text="RMS error", col=1)
    fig.update_layout(height=300 * rows + 60, margin={**MARGIN, "t": 30}, legend={"orientation": "h", "y": -0.12})
    return fig


def study_rows(study: grids.GridStudy) -> list[dict[str, object]]:
    """One row per sampler and grid: its fitted order and its error at the few-step budgets (a two-call sampler at
    the largest NFE within each)."""
    rows = []
    for curve in study.curves:
        cells: dict[str, object] = {
            "Sampler": SAMPLERS[curve.sampler].title,
            "Grid": _title(curve.grid),
            "Order (fitted)": None if curve.order is None else round(curve.order, 2),
        }
        if curve.grid == grids.TYPED:
            cells |= {f"NFE ≤ {n}": None for n in TABLE_NFES} | {"Its NFE": curve.nfes[0], "Error": curve.errors[0]}
        else:
            cells |= {f"NFE ≤ {n}": _rounded(curve.error_within(n)) for n in TABLE_NFES}
        rows.append(cells)
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")


def points_figure(study: grids.GridStudy, sampler: str, nfe: int) -> go.Figure:
    """Where each grid puts its steps at this NFE for this sampler, the fitted grids (and a typed one) filled."""
    rows = []
    for curve in study.curves:
        at = [s for n, s in zip(curve.nfes, curve.sigmas, strict=True) if n == nfe or curve.grid == grids.TYPED]
        if curve.sampler == sampler and at:
            filled = curve.grid in grids.FITTED or curve.grid == grids.TYPED
            rows.append((_title(curve.grid), at[0], GRID_COLOURS[curve.grid], filled))
    return grid_strip(rows, height=280)


def grids_tab(mixture: Mixture) -> None:
    st.markdown(
        "Which **step grid** should a few-step sampler use? Each deterministic sampler runs each grid from the "
        "**same start points** at NFE 3 to 32, measured by the RMS distance to the exact probability-flow ODE end "
        "point. Hand-made grids: Karras ρ = 7 (EDM), even in log-SNR (DPM-Solver's), even in σ. Fitted grids "
        f"(dotted), fitted on {grids.WARM_UP} points drawn apart from those measured: **Align Your Steps** (the "
        "grid of least KL upper bound between the exact SDE and the stepped one, here the exact minimum of its "
        "Monte Carlo estimate), **GITS** (the grid whose Euler steps stay closest to a fine Heun teacher, by "
        f"dynamic programming) and a direct **search** for each sampler and NFE (up to NFE {grids.OPTIMISE_UP_TO})."
    )
    deterministic = [name for name, spec in SAMPLERS.items() if not spec.injects_noise()]
    a, b = st.columns(2)
    samplers = a.multiselect(
        "Samplers",
        deterministic,
        default=[s for s in grids.DEFAULT_SAMPLERS if s in deterministic],
        format_func=lambda n: SAMPLERS[n].title,
        max_selections=9,
        key="gt-grid-samplers",
    )
    chosen = b.multiselect(
        "Grids", list(grids.GRIDS), default=list(grids.GRIDS), format_func=_title, key="gt-grid-grids"
    )
    c, d, e = st.columns([3, 1, 1])
    typed = attempt(typed_grid, c, "gt-grid-typed", SIGMA_MAX)
    n = d.number_input("Start points", 100, 5000, 500, step=100, key="gt-grid-n")
    seed = e.number_input("Seed", 0, 2**31 - 1, 0, key="gt-grid-seed")
    clicked = stop_row(
        "Measure",
        "gt-grid",
        "Keeps the curves measured so far.",
        disabled=not samplers or not (chosen or typed is not None),
    )
    progress = st.empty()
    if clicked:
        settings = {"samplers": samplers, "grids": chosen, "n_points": int(n), "seed": int(seed), "typed": typed}
        run_job("ground-truth grids", state.measure_grids, mixture, progress, **settings)
        progress.empty()
    found = state.grid_study(mixture)
    if found is None:
        st.info("**Measure** runs six samplers on the six grids in about 10 s for 500 points (one core).")
        return
    if stopped := found.tally.stopped("curves", "any curve was measured", "Measure again for all of them"):
        st.warning(stopped)
    if (study := found.value) is None:
        return
    st.caption(f"{study.n_points:,} start points, measured in {study.seconds:.1f} s.")
    st.plotly_chart(error_figure(study), key="gt-grid-fig")
    rows = study_rows(study)
    show_table(pd.DataFrame(rows), width="stretch", key="gt-grid-table")
    st.markdown("**Where each grid puts its steps**")
    measured = list(dict.fromkeys(c.sampler for c in study.curves))
    f, g = st.columns(2)
    sampler = f.selectbox("Sampler", measured, format_func=lambda s: SAMPLERS[s].title, key="gt-grid-at-sampler")
    nfes = sorted({n for c in study.curves if c.sampler == sampler and c.grid != grids.TYPED for n in c.nfes})
    if not nfes:
        return
    nfe = g.select_slider("At NFE", nfes, value=5 if 5 in nfes else nfes[0], key="gt-grid-at-nfe")
    st.plotly_chart(points_figure(study, sampler, int(nfe)), key="gt-grid-points")
    st.caption(
        "Open circles: hand-made grids; filled: the fitted ones (the search's grid is fitted to this sampler). "
        "Read the error of each at this NFE in the table above."
    )
