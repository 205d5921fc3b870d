"""What every page's charts share: colours, margins, the training-loss chart, the play controls of animated
figures, a distance's reference band, step grids side by side, and the maths of drawing a long curve (thinned
so spikes survive, smoothed as TensorBoard smooths). Pure builders (data -> plotly figure or layout), no Streamlit
calls."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from core.metrics.reference import ReferenceBand

# One colour per class (plotly's default qualitative colours), and one per run or series elsewhere.
CLASS_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
SERIES_COLORS = ("#5b3fd1", "#e4572e", "#17a398", "#f2a541", "#3b8ea5", "#b33f62", "#6c757d", "#2e7d32")
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
# A log axis whose every tick label reads as a number (plotly's default labels the ticks between powers of ten
# "2", "5", so a learning rate of 2e-3 read as "2").
LOG_AXIS = {"type": "log", "tickformat": ".3~g"}


def log_axis(values: Sequence[float]) -> dict[str, object]:
    """A log axis ticked by `log_ticks` over the positive finite `values` (plotly's own ticks without any)."""
    shown = [v for v in values if v > 0 and math.isfinite(v)]
    return {**LOG_AXIS, "tickvals": log_ticks(shown) if shown else None}


def log_ticks(values: Sequence[float], most: int = 8) -> list[float]:
    """Ticks for a log axis over positive `values`: 1, 2 and 5 times the powers of ten within their range, or a
    tenth beyond it, inside the axis's padding (only the powers where those would be more than `most`), or the
    two ends where fewer than two fall there. Plotly's own ticks label every integer of a range under a decade
    (4 5 6 7 8 9 10), which overlap on a narrow chart."""
    lo, hi = min(values) / 1.1, max(values) * 1.1
    powers = range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1,)):
        ticks = [m * 10**p for p in powers for m in mantissas if lo <= m * 10**p <= hi]
        if len(ticks) <= most:
            break
    return ticks if len(ticks) >= 2 else sorted({min(values), max(values)})


def polylines(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths [F, n, 2] (F points each) as one line trace's x and y, each path ended by NaN."""
    n = paths.shape[1]
    seq = np.concatenate([paths.transpose(1, 0, 2), np.full((n, 1, 2), np.nan)], axis=1).reshape(-1, 2)
    return seq[:, 0], seq[:, 1]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about max_points points that keep the curve's shape: per bucket its minimum and maximum
    (so spikes survive), plus the first and last point."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = {0, n - 1}
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            segment = y[lo:hi]
            keep.add(lo + int(np.nanargmin(segment)) if np.isfinite(segment).any() else lo)
            keep.add(lo + int(np.nanargmax(segment)) if np.isfinite(segment).any() else hi - 1)
    index = np.fromiter(sorted(keep), dtype=np.int64)
    return x[index], y[index]


def ema(y: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard smooths): 0 = raw, 0.99 = very smooth."""
    if smoothing <= 0 or len(y) == 0:
        return y.astype(np.float64)
    from scipy.signal import lfilter  # scipy costs ~60 MB: imported when a curve is first smoothed

    values = np.nan_to_num(y.astype(np.float64))
    smooth = lfilter([1 - smoothing], [1, -smoothing], values)
    return smooth / (1 - smoothing ** np.arange(1, len(values) + 1))


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
    (labelled `labels`, starting at frame `active`, its last label inside the figure) under the plot, and the
    bottom margin they need.

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
            {
                "type": "buttons",
                "direction": "left",
                "buttons": buttons,
                "x": 0,
                "y": -0.1,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 22, "r": 10},
                "showactive": False,
            }
        ],
        "sliders": [
            {
                "active": active,
                "steps": steps,
                "x": 0.26,
                "len": 0.74,
                "y": -0.1,
                "yanchor": "top",
                # room on the right for half the longest tick label, centred on the last tick (it was cut)
                "pad": {"t": 0, "r": min(150, round(2.5 * max((len(label) for label in labels), default=0)))},
                "currentvalue": {"prefix": prefix, "font": {"size": 12}, "xanchor": "left"},
                "ticklen": 3,
                "font": {"size": 10},
            }
        ],
        "margin": {**MARGIN, "b": 130},
    }


def add_band(
    fig: go.Figure,
    band: ReferenceBand,
    name: str,
    colour: str = "#888",
    row: int | None = None,
    col: int | None = None,
    legend: bool = True,
) -> go.Figure:
    """A reference band (core/metrics/reference.py: what a distance reads for data itself at these sample sizes)
    as a shaded stripe across the plot (or its subplot) from its lowest to its highest value, named `name` in the
    legend (once per name: `legend=False` for its other panels)."""
    return fig.add_hrect(
        y0=band.low,
        y1=band.high,
        fillcolor=colour,
        opacity=0.18,
        line_width=0,
        layer="below",
        name=name,
        legendgroup=name,
        showlegend=legend,
        row=row,
        col=col,
    )


def grid_strip(rows: list[tuple[str, torch.Tensor, str, bool]], height: int = 260) -> go.Figure:
    """Step grids side by side, one row each on a reversed log sigma axis (their final 0 left out): rows of
    (label, n sigmas then 0, colour, filled); filled points mark grids fitted to a model, open ones hand-made."""
    fig = go.Figure()
    for label, sigmas, colour, filled in rows:
        sig = sigmas[:-1].numpy()
        fig.add_trace(
            go.Scatter(
                x=sig,
                y=[label] * len(sig),
                mode="markers+lines",
                marker={
                    "color": colour,
                    "size": 11,
                    "symbol": "circle" if filled else "circle-open",
                    "line": {"width": 2},
                },
                line={"color": colour, "width": 1},
                hovertemplate="σ %{x:.4g}<extra>" + label + "</extra>",
                showlegend=False,
            )
        )
    fig.update_xaxes(title="σ (the last step, to 0, not drawn)", **LOG_AXIS, autorange="reversed")
    fig.update_layout(height=height, margin={**MARGIN, "t": 10})
    return fig
