"""What every page's charts share: colours, margins, the training-loss chart and the play controls of
animated figures. Pure builders (data -> plotly figure or layout), no Streamlit calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.training.runlog import ema

# One colour per class (plotly's default qualitative colours), and one per run or series elsewhere.
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
SERIES_COLORS = ("#5b3fd1", "#e4572e", "#17a398", "#f2a541", "#3b8ea5", "#b33f62", "#6c757d", "#2e7d32")
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
# A log axis whose every tick label reads as a number (plotly's default labels the ticks between powers of ten
# "2", "5", so a learning rate of 2e-3 read as "2").
LOG_AXIS = {"type": "log", "tickformat": ".3~g"}


def polylines(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths [F, n, 2] (F points each) as one line trace's x and y, each path ended by NaN."""
    n = paths.shape[1]
    seq = np.concatenate([paths.transpose(1, 0, 2), np.full((n, 1, 2), np.nan)], axis=1).reshape(-1, 2)
    return seq[:, 0], seq[:, 1]


def loss_figure(metrics: Sequence[dict], height: int = 260) -> go.Figure:
    """Training loss per logged step, raw (faint) and smoothed (a bias-corrected EMA over records, 0.9)."""
    steps = np.array([m["step"] for m in metrics], dtype=float)
    loss = np.array([m["loss"] for m in metrics], dtype=float)
    fig = go.Figure(
        [
            go.Scatter(x=steps, y=loss, mode="lines", name="loss", line={"color": "rgba(31,119,180,0.3)"}),
            go.Scatter(x=steps, y=ema(loss, 0.9), mode="lines", name="smoothed", line={"color": CLASS_COLORS[0]}),
        ]
    )
    fig.update_layout(height=height, margin={**MARGIN, "t": 30}, showlegend=False)
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="MSE loss", tickformat=".3g")
    return fig


def play_controls(
    names: Sequence[str], labels: Sequence[str], duration: int, prefix: str, active: int = 0
) -> dict[str, object]:
    """Layout for an animated figure whose frames are called `names`: Play / Pause buttons and a slider
    (labelled `labels`, starting at frame `active`) under the plot, and the bottom margin they need.

    Play goes on from the frame shown, except from the last one (a figure that opens on its end result),
    where it starts again from the first: plotly would otherwise have nothing left to play."""
    anim = {"frame": {"duration": duration, "redraw": True}, "mode": "immediate", "transition": {"duration": 0}}
    from_current = active != len(names) - 1
    buttons = [
        {"label": "▶ Play", "method": "animate", "args": [None, {**anim, "fromcurrent": from_current}]},
        {"label": "Pause", "method": "animate", "args": [[None], {**anim, "frame": {"duration": 0}}]},
    ]
    steps = [
        {"label": label, "method": "animate", "args": [[name], anim]} for name, label in zip(names, labels, strict=True)
    ]
    return {
        "updatemenus": [
            {"type": "buttons", "direction": "left", "buttons": buttons, "x": 0, "y": -0.1, "xanchor": "left",
             "yanchor": "top", "pad": {"t": 22, "r": 10}, "showactive": False}
        ],
        "sliders": [
            {"active": active, "steps": steps, "x": 0.26, "len": 0.74, "y": -0.1, "yanchor": "top", "pad": {"t": 0},
             "currentvalue": {"prefix": prefix, "font": {"size": 12}, "xanchor": "left"}, "ticklen": 3,
             "font": {"size": 10}}
        ],
        "margin": {**MARGIN, "b": 130},
    }  # fmt: skip
