"""Figures of the toy lab: pure builders (tensors in original units -> plotly figures), no Streamlit. The point-cloud
basics and the drift-field figure, which the Guidance page draws too, are in ui/common/clouds.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.diffusion.flow_map import ErrorField
from core.metrics.reference import ReferenceBand
from ui.common.charts import LOG_AXIS, MARGIN, SERIES_COLORS, add_band, log_axis, play_controls, polylines
from ui.common.clouds import DATA_COLOR, SAMPLE_COLOR, X0_COLOR, as_points, equal_axes, fit_ranges, markers


def cloud_figure(points: torch.Tensor, title: str = "", height: int = 480) -> go.Figure:
    """The data set, in its own units."""
    pts = as_points(points)
    fig = go.Figure(markers(pts, "data", SAMPLE_COLOR, 3, opacity=0.6))
    fig.update_layout(title={"text": title, "font": {"size": 14}}, showlegend=False)
    return equal_axes(fig, pts.shape[1], height=height)


def samples_figure(samples: torch.Tensor, data: torch.Tensor, height: int = 480) -> go.Figure:
    """Final samples (blue) over the data (grey)."""
    s, d = as_points(samples), as_points(data)
    fig = go.Figure([markers(d, "data", DATA_COLOR, 3), markers(s, "samples", SAMPLE_COLOR, 3, opacity=0.7)])
    return equal_axes(fig, s.shape[1], fit_ranges([d, s]), height)


def trajectory_figure(
    path: torch.Tensor,
    sigmas: torch.Tensor,
    times: torch.Tensor,
    data: torch.Tensor,
    path_x0: torch.Tensor | None = None,
    height: int = 560,
) -> go.Figure:
    """Animated cloud from noise (first frame) to samples (last), over the data; optionally the x_0 estimate.

    path: [F, m, D] VP states in original units; sigmas, times: [F] noise level and u = t / (T - 1)."""
    frames_np = path.detach().double().cpu().numpy()
    x0_np = None if path_x0 is None else path_x0.detach().double().cpu().numpy()
    d = as_points(data, 5000)
    dim = frames_np.shape[2]

    def traces(f: int) -> list[go.BaseTraceType]:
        out = [markers(frames_np[f], "points x_t", SAMPLE_COLOR, 4, opacity=0.8)]
        if x0_np is not None:
            out.append(markers(x0_np[f], "predicted x₀", X0_COLOR, 3, opacity=0.5))
        return out

    n_traces = 1 + (x0_np is not None)
    frames = [go.Frame(data=traces(f), traces=list(range(1, 1 + n_traces)), name=str(f)) for f in range(len(frames_np))]
    fig = go.Figure([markers(d, "data", DATA_COLOR, 3), *traces(0)], frames=frames)
    labels = [f"u={float(u):.3f}, σ={float(s):.3g}" for u, s in zip(times, sigmas, strict=True)]
    arrays = [d, frames_np] + ([x0_np] if x0_np is not None else [])
    equal_axes(fig, dim, fit_ranges(arrays), height)
    return fig.update_layout(**play_controls([str(i) for i in range(len(labels))], labels, 120, "reverse time: "))


def tries_figure(rows: Sequence[dict], bands: Mapping[str, ReferenceBand], height: int = 300) -> go.Figure:
    """The table of tries as curves: SW2 and MMD to fresh data against the number of steps, one line per
    sampler (and model), so accuracy can be read against cost; shaded, what they read between two fresh data
    sets (`bands` "swd" and "mmd", of the last sample's size)."""
    fig = make_subplots(1, 2, subplot_titles=("sliced W₂ to fresh data", "MMD to fresh data"))
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(f"{row['Sampler']} · {row['Model'].split(' @ ')[0]}", []).append(row)
    for k, (label, group) in enumerate(groups.items()):
        group = sorted(group, key=lambda r: r["Steps"])
        colour = SERIES_COLORS[k % len(SERIES_COLORS)]
        for col, key in ((1, "SWD"), (2, "MMD")):
            fig.add_trace(
                go.Scatter(
                    x=[r["Steps"] for r in group],
                    y=[r[key] for r in group],
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    mode="lines+markers",
                    line={"color": colour},
                ),
                1,
                col,
            )
    for col, key in ((1, "swd"), (2, "mmd")):
        add_band(fig, bands[key], bands[key].describe(), row=1, col=col, legend=col == 1)
    fig.update_xaxes(**LOG_AXIS, title="steps")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.3}
    )
    return fig


# ---- section 6: few steps, one step -------------------------------------------------------------------------

PANELS_PER_ROW = 4
TITLED_TOP = 55  # room above the first row's titles for the chart's toolbar


def _grid(count: int) -> tuple[int, int]:
    """(rows, columns) of small multiples: at most PANELS_PER_ROW a row."""
    cols = min(count, PANELS_PER_ROW)
    return -(-count // cols), cols


def _square_panels(fig: go.Figure, count: int, cols: int) -> go.Figure:
    """Equal units on both axes of each of the first `count` panels (a ring looks round)."""
    for k in range(count):
        r, c = divmod(k, cols)
        fig.update_yaxes(scaleanchor=f"x{k + 1 if k else ''}", scaleratio=1, row=r + 1, col=c + 1)
    return fig


def nfe_ladder_figure(series: Sequence[tuple[str, Mapping[int, float]]], band: ReferenceBand, height: int = 340):
    """SW2 to fresh data against the NFE, log-log, one line per model (`series`: name, NFE -> SW2); shaded,
    what SW2 reads between two fresh data sets (its legend names their size)."""
    fig = go.Figure()
    for k, (name, values) in enumerate(series):
        fig.add_trace(
            go.Scatter(
                x=list(values),
                y=list(values.values()),
                mode="lines+markers",
                name=name,
                line={"color": SERIES_COLORS[k % len(SERIES_COLORS)]},
            )
        )
    add_band(fig, band, band.describe())
    nfes = sorted({n for _, v in series for n in v})
    fig.update_xaxes(title="NFE (network evaluations)", **LOG_AXIS, tickvals=nfes)
    values = [v for _, s in series for v in s.values()] + [band.low, band.high]
    fig.update_yaxes(title="sliced W₂ to fresh data", **log_axis(values))
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.25})
    return fig


def small_multiples_figure(panels: Sequence[tuple[str, torch.Tensor]], data: torch.Tensor, height: int = 260):
    """Point clouds side by side (`panels`: title, points [n, D], their first two axes) over the data (grey), with
    one range for all, so they compare at a glance."""
    rows, cols = _grid(len(panels))
    fig = make_subplots(
        rows, cols, subplot_titles=[t for t, _ in panels], horizontal_spacing=0.02, vertical_spacing=0.08
    )
    d = as_points(data, 2000)[:, :2]
    clouds = [as_points(p, 2000)[:, :2] for _, p in panels]
    ranges = fit_ranges([d, *clouds])
    for k, pts in enumerate(clouds):
        r, c = divmod(k, cols)
        fig.add_trace(markers(d, "data", DATA_COLOR, 2, showlegend=k == 0, legendgroup="data"), r + 1, c + 1)
        fig.add_trace(
            markers(pts, "samples", SAMPLE_COLOR, 2, opacity=0.7, showlegend=k == 0, legendgroup="s"), r + 1, c + 1
        )
    fig.update_xaxes(range=ranges[0], showticklabels=False)
    fig.update_yaxes(range=ranges[1], showticklabels=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height * rows, margin={**MARGIN, "t": TITLED_TOP}, legend={"orientation": "h", "y": -0.05})
    return _square_panels(fig, len(panels), cols)


def pairs_figure(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor]], height: int = 320):
    """The straight training paths of couplings side by side (`panels`: title, data [m, 2], its noise [m, 2]),
    from each noise point (grey) to its data point (coloured), standardised units."""
    rows, cols = _grid(len(panels))
    fig = make_subplots(rows, cols, subplot_titles=[t for t, _, _ in panels], horizontal_spacing=0.02)
    for k, (_, x0, eps) in enumerate(panels):
        r, c = divmod(k, cols)
        a, b = as_points(eps)[:, :2], as_points(x0)[:, :2]
        xs, ys = polylines(np.stack([a, b]))
        colour = SERIES_COLORS[k % len(SERIES_COLORS)]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", line={"width": 1, "color": colour}, hoverinfo="skip", showlegend=False
            ),
            r + 1,
            c + 1,
        )
        fig.add_trace(markers(a, "noise", "#999", 3, showlegend=k == 0, legendgroup="noise"), r + 1, c + 1)
        fig.add_trace(markers(b, "data", colour, 3, showlegend=False), r + 1, c + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height * rows, margin={**MARGIN, "t": TITLED_TOP}, legend={"orientation": "h", "y": -0.05})
    return _square_panels(fig, len(panels), cols)


def error_fields_figure(panels: Sequence[tuple[str, ErrorField]], height: int = 260):
    """Error fields of one-step maps (`panels`: title, core/diffusion/flow_map.ErrorField) side by side as
    heatmaps on one colour scale, each titled with its mean error where the points are (weighted by p_t)."""
    rows, cols = _grid(len(panels))
    titles = [f"{t}: {f.weighted_mean:.3f}" for t, f in panels]
    fig = make_subplots(rows, cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    top = max(float(torch.quantile(f.error.flatten().double(), 0.98)) for _, f in panels) or 1.0
    for k, (_, f) in enumerate(panels):
        r, c = divmod(k, cols)
        fig.add_trace(
            go.Heatmap(
                x=f.xs.numpy(),
                y=f.ys.numpy(),
                z=f.error.numpy(),
                zmin=0,
                zmax=top,
                colorscale="Viridis",
                showscale=k == 0,
                colorbar={"title": "|g − f|", "len": 0.8},
                hovertemplate="x=%{x:.2f}, y=%{y:.2f}: %{z:.3f}<extra></extra>",
            ),
            r + 1,
            c + 1,
        )
        fig.add_trace(
            go.Contour(
                x=f.xs.numpy(),
                y=f.ys.numpy(),
                z=f.density.numpy(),
                showscale=False,
                contours={"coloring": "none"},
                line={"color": "white", "width": 1},
                ncontours=6,
                hoverinfo="skip",
                showlegend=False,
            ),
            r + 1,
            c + 1,
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height * rows, margin={**MARGIN, "t": TITLED_TOP})
    return _square_panels(fig, len(panels), cols)


def study_figure(
    maps: Sequence[tuple[int, float]], pairs: Sequence[tuple[int, float, float]], height: int = 320
) -> go.Figure:
    """Error against the OT batch size, log-log: the learned one-step map's (`maps`: batch, error) and the
    minibatch OT pairs' own (`pairs`: batch, per-pair error, mean-map error), all against the closed-form map."""
    fig = go.Figure()
    lines = [
        ("one-step map of the trained flow", [b for b, _ in maps], [e for _, e in maps]),
        ("OT pairs: each pair", [b for b, _, _ in pairs], [e for _, e, _ in pairs]),
        ("OT pairs: their mean map", [b for b, _, _ in pairs], [e for _, _, e in pairs]),
    ]
    for k, (name, xs, ys) in enumerate(lines):
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line={"color": SERIES_COLORS[k]}))
    batches = sorted({b for _, xs, _ in lines for b in xs})
    fig.update_xaxes(title="pairs coupled at once (1: independent)", **LOG_AXIS, tickvals=batches)
    fig.update_yaxes(title="RMS distance to the OT map", **log_axis([e for _, _, ys in lines for e in ys]))
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.3})
    return fig
