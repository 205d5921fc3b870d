"""Figures of 2-D and 3-D point clouds that several pages draw (the Toy lab, Guidance): the shared colours, marker
traces, ranges and equal-unit axes, and the animated drift-field figure. Pure builders (tensors in the data's own
units -> plotly figures), no Streamlit calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.diffusion.fields import DriftField
from ui.common.charts import play_controls

DATA_COLOR, SAMPLE_COLOR, X0_COLOR = "rgba(120,120,120,0.35)", "#1f77b4", "#ff7f0e"
PANEL_COLORS = ("#1f77b4", "#2ca02c", "#d62728")
MAX_SHOWN = 5_000  # points drawn per cloud: more only slow the browser (the shape is the same)
AXES = ("x", "y", "z")


def as_points(x: torch.Tensor, limit: int = MAX_SHOWN) -> np.ndarray:
    return x[:limit].detach().double().cpu().numpy()


def markers(points: np.ndarray, name: str, color: str, size: float, **kw) -> go.BaseTraceType:
    if points.shape[1] == 3:
        return go.Scatter3d(
            x=points[:, 0],
            y=points[:, 1],
            z=points[:, 2],
            mode="markers",
            name=name,
            marker={"size": size * 0.6, "color": color},
            **kw,
        )
    return go.Scattergl(
        x=points[:, 0], y=points[:, 1], mode="markers", name=name, marker={"size": size, "color": color}, **kw
    )


def fit_ranges(arrays: Sequence[np.ndarray], pad: float = 0.05) -> list[list[float]]:
    """Per-axis ranges holding 99.8% of the points (so a few strays do not shrink the picture)."""
    pts = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays])
    lo, hi = np.quantile(pts, 0.001, axis=0), np.quantile(pts, 0.999, axis=0)
    size = float((hi - lo).max()) or 1.0
    return [[float(a - pad * size), float(b + pad * size)] for a, b in zip(lo, hi, strict=True)]


def equal_axes(fig: go.Figure, dim: int, ranges: list[list[float]] | None = None, height: int = 480) -> go.Figure:
    """Equal units on every axis (a circle looks round), fixed ranges when given, a compact legend."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    if dim == 3:
        scene = {"aspectmode": "data" if ranges is None else "cube"}
        if ranges is not None:
            sizes = [r[1] - r[0] for r in ranges]
            scene = {
                "aspectmode": "manual",
                "aspectratio": {a: s / max(sizes) for a, s in zip(AXES, sizes, strict=True)},
            }
            scene |= {f"{a}axis": {"range": r, "autorange": False} for a, r in zip(AXES, ranges, strict=True)}
        fig.update_scenes(**scene)
    else:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        if ranges is not None:
            fig.update_xaxes(range=ranges[0], autorange=False)
            fig.update_yaxes(range=ranges[1], autorange=False)
    return fig


def _arrows_2d(points: np.ndarray, vectors: np.ndarray, head: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (shaft + two head strokes) for each arrow, separated by NaN, as one trace's x and y."""
    tips = points + vectors
    back = -vectors * head
    rot = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    left, right = tips + back @ rot.T, tips + back @ rot
    nan = np.full_like(points, np.nan)
    seq = np.stack([points, tips, nan, left, tips, right, nan], axis=1).reshape(-1, 2)
    return seq[:, 0], seq[:, 1]


def _field_scale(vectors: Sequence[np.ndarray], cell: float, reach: float = 0.9) -> float:
    """One length scale per frame for all panels: the 95th-percentile arrow spans 0.9 grid cells (longer
    arrows are capped at 1.5 cells when drawn, so a few large values do not hide the rest)."""
    mags = np.concatenate([np.linalg.norm(v, axis=-1).ravel() for v in vectors])
    ref = float(np.quantile(mags, 0.95)) if len(mags) else 0.0
    return reach * cell / ref if ref > 0 else 0.0


def field_figure(
    panels: Sequence[tuple[str, DriftField]],
    kind: str,
    data: torch.Tensor,
    height: int = 520,
) -> go.Figure:
    """The drift field (kind: "velocity" or "score") of each panel, side by side, animated over time.

    Arrows are rescaled per frame with one scale for all panels (so learned, exact and their difference
    compare), and 3-D fields are drawn as cones coloured by magnitude."""
    first = panels[0][1]
    pts = first.points.detach().double().cpu().numpy()
    dim = pts.shape[1]
    fields = [getattr(f, kind).detach().double().cpu().numpy() for _, f in panels]  # each [F, G, D]
    cell = float(np.min([np.diff(np.unique(pts[:, k]))[:1].min() for k in range(dim)]))
    d = as_points(data, 3000)
    ranges = fit_ranges([d, pts], pad=0.07)  # room for the arrows of the outer grid points
    titles = [t for t, _ in panels]
    specs = [[{"type": "scene" if dim == 3 else "xy"} for _ in panels]]
    fig = make_subplots(1, len(panels), subplot_titles=titles, specs=specs, horizontal_spacing=0.04)
    n_frames = len(first.times)
    reach, cap = (0.55, 0.9) if dim == 3 else (0.9, 1.5)  # in grid cells; cones need more room than arrows
    scales = [_field_scale([f[k] for f in fields], cell, reach) for k in range(n_frames)]

    def traces(k: int) -> list[go.BaseTraceType]:
        out = []
        for p, f in enumerate(fields):
            mag = np.linalg.norm(f[k], axis=1)
            v = f[k] * scales[k]
            drawn = np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
            v = v * np.minimum(1.0, cap * cell / drawn)
            if dim == 2:
                x, y = _arrows_2d(pts, v)
                out.append(
                    go.Scatter(
                        x=x,
                        y=y,
                        mode="lines",
                        line={"width": 1.3, "color": PANEL_COLORS[p % 3]},
                        hoverinfo="skip",
                        showlegend=False,
                    )
                )
            else:
                out.append(
                    go.Cone(
                        x=pts[:, 0],
                        y=pts[:, 1],
                        z=pts[:, 2],
                        u=v[:, 0],
                        v=v[:, 1],
                        w=v[:, 2],
                        sizemode="raw",
                        sizeref=1.0,
                        anchor="tail",
                        colorscale="Viridis",
                        cmin=0,
                        cmax=cap * cell,
                        showscale=False,
                        customdata=mag,
                        hovertemplate="|field| %{customdata:.3g}<extra></extra>",
                        scene=f"scene{p + 1 if p else ''}",
                    )
                )
        return out

    for p in range(len(panels)):
        if dim == 2:
            fig.add_trace(markers(d, "data", DATA_COLOR, 3, showlegend=False), 1, p + 1)
        else:
            fig.add_trace(markers(d, "data", "rgba(120,120,120,0.5)", 3, showlegend=False), 1, p + 1)
    base = len(panels)
    for p, tr in enumerate(traces(0)):
        fig.add_trace(tr, 1, p + 1)
    fig.frames = [
        go.Frame(data=traces(k), traces=list(range(base, base + len(panels))), name=str(k)) for k in range(n_frames)
    ]
    speed = [np.linalg.norm(fields[0][k], axis=1).max() for k in range(n_frames)]
    labels = [
        f"u={float(u):.3f}, σ={float(s):.3g}, max |·|={m:.3g}"
        for u, s, m in zip(first.times, first.sigmas, speed, strict=True)
    ]
    equal_axes(fig, dim, ranges, height)
    fig.update_layout(**play_controls([str(k) for k in range(n_frames)], labels, 400, "time: "), showlegend=False)
    if dim == 2:
        for p in range(1, len(panels)):
            fig.update_yaxes(scaleanchor=f"x{p + 1}", row=1, col=p + 1)
            fig.update_xaxes(matches="x", row=1, col=p + 1)
            fig.update_yaxes(matches="y", row=1, col=p + 1)
    return fig
