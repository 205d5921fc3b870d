"""The Inversion page's figures: paths up to the noise and back, the round-trip error against the steps and the
guidance scale, and the inverted noise against N(0, 1). Pure builders (data -> plotly figure), no Streamlit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth.accuracy import fitted_order
from core.labs.inversion import ErrorRow, Inverted
from ui.common.charts import CLASS_COLORS, MARGIN, SERIES_COLORS, log_axis, polylines

MAX_PATHS = 400  # paths drawn (every point is inverted; the figure shows the first ones)
NO_SCALE = "—"  # the table's guidance scale where there is none (a model run without a class)
PATH_COLOR, DATA_COLOR, NOISE_COLOR, BACK_COLOR = "rgba(91,63,209,0.28)", "#1f3b73", "#e4572e", "#17a398"


def paths_figure(
    inv: Inverted,
    labels: np.ndarray | None = None,
    to_units: Callable[[torch.Tensor], torch.Tensor] = lambda y: y,
    height: int = 520,
) -> go.Figure:
    """Each point's path from the data up to its noise (VP coordinates, mapped by `to_units`), the noise ends,
    and the points sampled back from them: where the round trip lands beside where it began."""
    k = min(MAX_PATHS, len(inv.data))
    up = to_units(inv.up[:, :k].double()).numpy()
    data, back = to_units(inv.data[:k].double()).numpy(), to_units(inv.sample[:k].double()).numpy()
    noise = up[-1]
    fig = go.Figure()
    x, y = polylines(up)
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="lines", line={"width": 1, "color": PATH_COLOR}, name="path up", hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(
            x=noise[:, 0],
            y=noise[:, 1],
            mode="markers",
            name="inverted noise",
            marker={"size": 4, "color": NOISE_COLOR, "symbol": "x"},
        )
    )
    if labels is None:
        fig.add_trace(
            go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data", marker={"size": 6, "color": DATA_COLOR})
        )
    else:
        for c in np.unique(labels[:k]):
            m = labels[:k] == c
            fig.add_trace(
                go.Scatter(
                    x=data[m, 0],
                    y=data[m, 1],
                    mode="markers",
                    name=f"data: {c}",
                    marker={"size": 6, "color": CLASS_COLORS[int(c) % 10]},
                )
            )
    ring = {"size": 9, "color": "rgba(0,0,0,0)", "line": {"width": 1.2, "color": BACK_COLOR}}
    fig.add_trace(go.Scatter(x=back[:, 0], y=back[:, 1], mode="markers", name="sampled back", marker=ring))
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.08})
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def error_figure(rows: Sequence[ErrorRow], with_orders: bool = False, height: int = 380) -> go.Figure:
    """Round-trip error against denoiser evaluations, per sampler (log-log): the ODE's (solid, at sigma_min)
    and the full one with sampling's last step (dotted), with standard errors over the samples."""
    fig = go.Figure()
    names = list(dict.fromkeys(r.sampler for r in rows))
    for i, name in enumerate(names):
        mine = [r for r in rows if r.sampler == name]
        nfe = [r.nfe for r in mine]
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        order = fitted_order(nfe, [r.ode_error for r in mine]) if with_orders else None
        title = SAMPLERS[name].title + (f" (slope {order:.2f})" if order is not None else "")
        fig.add_trace(
            go.Scatter(
                x=nfe,
                y=[r.ode_error for r in mine],
                mode="lines+markers",
                name=title,
                line={"color": color},
                error_y={"array": [r.ode_se for r in mine], "width": 3},
                legendgroup=name,
                hovertemplate="NFE %{x}: %{y:.3g}<extra>ODE</extra>",
            )
        )
        if not with_orders:
            fig.add_trace(
                go.Scatter(
                    x=nfe,
                    y=[r.error for r in mine],
                    mode="lines",
                    name=f"{title}, full",
                    line={"color": color, "dash": "dot"},
                    legendgroup=name,
                    showlegend=False,
                    hovertemplate="NFE %{x}: %{y:.3g}<extra>full</extra>",
                )
            )
    errors = [r.ode_error for r in rows] + ([] if with_orders else [r.error for r in rows])
    fig.update_xaxes(title="denoiser evaluations each way (NFE)", **log_axis([r.nfe for r in rows]))
    fig.update_yaxes(title="RMS round-trip error", **log_axis(errors))
    fig.update_layout(height=height, margin=MARGIN)
    return fig


def scale_figure(rows: Sequence[ErrorRow], height: int = 340) -> go.Figure:
    """Round-trip error against the guidance scale used both ways, at one sampler and step count."""
    w = [r.scale for r in rows]
    fig = go.Figure(
        [
            go.Scatter(
                x=w,
                y=[r.ode_error for r in rows],
                mode="lines+markers",
                name="ODE (at sigma_min)",
                error_y={"array": [r.ode_se for r in rows], "width": 3},
                line={"color": SERIES_COLORS[0]},
            ),
            go.Scatter(
                x=w,
                y=[r.error for r in rows],
                mode="lines+markers",
                name="full (sampled to 0)",
                error_y={"array": [r.error_se for r in rows], "width": 3},
                line={"color": SERIES_COLORS[1], "dash": "dot"},
            ),
        ]
    )
    fig.update_xaxes(title="guidance scale w (both ways)")
    fig.update_yaxes(title="RMS round-trip error", **log_axis([r.ode_error for r in rows] + [r.error for r in rows]))
    fig.update_layout(height=height, margin=MARGIN)
    return fig


def noise_histogram(sets: dict[str, np.ndarray], height: int = 320) -> go.Figure:
    """Histograms (as densities) of inverted noises in units of sigma_max, over the N(0, 1) density."""
    fig = go.Figure()
    for i, (name, values) in enumerate(sets.items()):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(values).ravel(),
                histnorm="probability density",
                name=name,
                opacity=0.55,
                marker_color=SERIES_COLORS[i % len(SERIES_COLORS)],
                xbins={"start": -5, "end": 5, "size": 0.2},
            )
        )
    z = np.linspace(-4.5, 4.5, 200)
    fig.add_trace(
        go.Scatter(
            x=z,
            y=np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi),
            mode="lines",
            name="N(0, 1)",
            line={"color": "black", "width": 2},
        )
    )
    fig.update_layout(barmode="overlay", height=height, margin=MARGIN, legend={"orientation": "h", "y": 1.12})
    fig.update_xaxes(title="eps = x(sigma_max) / sigma_max", range=[-5, 5])
    fig.update_yaxes(title="density")
    return fig


def error_rows(rows: Sequence[ErrorRow]) -> list[dict[str, object]]:
    """A table of the rows, each with its steps and guidance scale (NO_SCALE for a model run without a class)."""
    return [
        {
            "Sampler": SAMPLERS[r.sampler].title,
            "Steps": r.steps,
            "Scale w": NO_SCALE if math.isnan(r.scale) else f"{r.scale:g}",
            "NFE each way": r.nfe,
            "RMS error, ODE": f"{r.ode_error:.3g} ± {r.ode_se:.2g}",
            "RMS error, full": f"{r.error:.3g} ± {r.error_se:.2g}",
            "Seconds": round(r.seconds, 2),
        }
        for r in rows
    ]
