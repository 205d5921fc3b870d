"""Figures of the toy lab: pure builders (tensors in original units -> plotly figures), no Streamlit. The point-cloud
basics and the drift-field figure, which the Guidance page draws too, are in ui/common/clouds.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.metrics.reference import ReferenceBand
from ui.common.charts import LOG_AXIS, SERIES_COLORS, add_band, play_controls
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
