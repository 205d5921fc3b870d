"""Figures of the Compare checkpoints page: pure builders (no Streamlit calls)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.common.charts import SERIES_COLORS, log_axis

DATA_COLOR, SAMPLE_COLOR = "rgba(120,120,120,0.35)", "#1f77b4"


def over_steps_figure(
    steps: Sequence[int],
    series: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    levels: Mapping[str, tuple[float, str]] | None = None,
    title: str = "",
    log_y: bool = False,
    x_title: str = "training step",
) -> go.Figure:
    """Quality measures against the training step (or another axis, `x_title`): each series (values, standard
    errors or None) as a line with error bars; a level it is read against (value, what it is: e.g. every digit as
    often) as a dotted line of the same colour, named in the legend. A log y axis is ticked at 1-2-5 over the values
    drawn."""
    fig = go.Figure()
    steps = list(steps)
    for k, (name, (values, errors)) in enumerate(series.items()):
        colour = SERIES_COLORS[k % len(SERIES_COLORS)]
        bars = {"type": "data", "array": list(errors), "visible": True} if errors is not None else None
        fig.add_trace(
            go.Scatter(x=steps, y=list(values), name=name, mode="lines+markers", line={"color": colour}, error_y=bars)
        )
        if levels and name in levels:
            value, meaning = levels[name]
            fig.add_trace(
                go.Scatter(
                    x=[min(steps), max(steps)],
                    y=[value, value],
                    name=f"{name}: {meaning}",
                    mode="lines",
                    line={"color": colour, "dash": "dot"},
                )
            )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 13}},
        xaxis={"title": x_title},
        yaxis=log_axis([v for values, _ in series.values() for v in values]) if log_y else {"type": "linear"},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def clouds_over_steps(panels: Sequence[tuple[str, np.ndarray]], data: np.ndarray, columns: int = 4) -> go.Figure:
    """Each checkpoint's samples [n, D] over the training data (grey), one small panel per step, shared axes
    (the first two coordinates of 3-D data)."""
    rows = int(np.ceil(len(panels) / columns))
    fig = make_subplots(
        rows=rows,
        cols=min(columns, len(panels)),
        subplot_titles=[t for t, _ in panels],
        shared_xaxes=True,
        shared_yaxes=True,
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    everything = np.concatenate([data[:, :2], *[p[:, :2] for _, p in panels]])
    lo, hi = np.quantile(everything, 0.002, axis=0), np.quantile(everything, 0.998, axis=0)
    pad = 0.05 * float((hi - lo).max() or 1)
    for k, (_, points) in enumerate(panels):
        r, c = k // columns + 1, k % columns + 1
        fig.add_trace(
            go.Scattergl(
                x=data[:, 0],
                y=data[:, 1],
                mode="markers",
                marker={"size": 2, "color": DATA_COLOR},
                name="data",
                showlegend=k == 0,
            ),
            row=r,
            col=c,
        )
        fig.add_trace(
            go.Scattergl(
                x=points[:, 0],
                y=points[:, 1],
                mode="markers",
                name="samples",
                marker={"size": 2.5, "color": SAMPLE_COLOR},
                showlegend=k == 0,
            ),
            row=r,
            col=c,
        )
    fig.update_xaxes(range=[lo[0] - pad, hi[0] + pad], showticklabels=False)
    fig.update_yaxes(range=[lo[1] - pad, hi[1] + pad], showticklabels=False)
    fig.update_layout(  # the legend under the panels, clear of their titles
        height=260 * rows + 40,
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": 0, "yanchor": "top", "x": 0},
    )
    return fig


def cloud_image(
    points: np.ndarray, data: np.ndarray, box: tuple[np.ndarray, np.ndarray], side: int = 220
) -> np.ndarray:
    """Samples (blue) over the data (grey) drawn into a uint8 RGB square, in the box (lo, hi) given: the
    exported picture of one checkpoint (first two coordinates)."""
    image = np.full((side, side, 3), 255, dtype=np.uint8)
    lo, hi = box
    scale = (side - 1) / np.maximum(hi - lo, 1e-12)
    for cloud, colour in ((data, (190, 190, 190)), (points, (31, 119, 180))):
        xy = np.round((cloud[:, :2] - lo) * scale).astype(int)
        inside = ((xy >= 0) & (xy < side)).all(axis=1)
        image[side - 1 - xy[inside, 1], xy[inside, 0]] = colour
    return image
