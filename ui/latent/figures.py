"""Figures of the Latent MNIST page: pure builders (numpy in latent units -> plotly figures), no Streamlit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.metrics.kde import Densities
from ui.common.charts import CLASS_COLORS, MARGIN, play_controls

MAX_DRAWN = 600  # points per scatter
MAX_SURFACE_SIDE = 40  # mesh points per side of a 3-D surface or a contour map


def _square(fig: go.Figure, height: int, ranges: Sequence[Sequence[float]] | None = None, legend: str = "class"):
    fig.update_layout(height=height, margin=MARGIN, legend={"title": legend, "itemsizing": "constant"})
    fig.update_yaxes(scaleanchor="x", scaleratio=1, title="z₂")
    fig.update_xaxes(title="z₁")
    if ranges is not None:
        fig.update_xaxes(range=list(ranges[0]), autorange=False)
        fig.update_yaxes(range=list(ranges[1]), autorange=False)
    return fig


def robust_ranges(points: np.ndarray, pad: float = 0.08) -> list[list[float]]:
    """Per-axis ranges holding 99.5% of the points, padded (a few strays do not shrink the picture)."""
    lo, hi = np.quantile(points, 0.0025, axis=0), np.quantile(points, 0.9975, axis=0)
    span = float((hi - lo).max()) or 1.0
    return [[float(a - pad * span), float(b + pad * span)] for a, b in zip(lo, hi, strict=True)]


def _drawn(n: int, limit: int = MAX_DRAWN) -> np.ndarray:
    """Indices of at most `limit` of n points, evenly spread (the digits come class by class in turn, so any
    even spread keeps the classes' shares): more points only slow the browser, the picture stays the same."""
    return np.arange(n) if n <= limit else np.linspace(0, n - 1, limit).round().astype(int)


def _class_traces(points: np.ndarray, labels: np.ndarray, size: float = 4, opacity: float = 0.7) -> list[go.Scatter]:
    traces = []
    keep = _drawn(len(points))
    points, labels = points[keep], labels[keep]
    for c in range(10):
        p = points[labels == c]
        traces.append(
            go.Scatter(
                x=p[:, 0],
                y=p[:, 1],
                mode="markers",
                name=str(c),
                marker={"size": size, "color": CLASS_COLORS[c], "opacity": opacity},
            )
        )
    return traces


def latent_scatter(points: np.ndarray, labels: np.ndarray, title: str, height: int = 460) -> go.Figure:
    """The encoded digits, one colour per class."""
    fig = go.Figure(_class_traces(points, labels))
    fig.update_layout(title=title)
    return _square(fig, height, robust_ranges(points))


def snapshot_animation(steps: np.ndarray, means: np.ndarray, labels: np.ndarray, height: int = 500) -> go.Figure:
    """Replay of the latent means of fixed digits [S, N, 2] at training steps [S] (plotly frames, a slider)."""
    ranges = robust_ranges(means[-1])
    frames = [go.Frame(data=_class_traces(m, labels), name=str(int(s))) for s, m in zip(steps, means, strict=True)]
    fig = _square(go.Figure(_class_traces(means[-1], labels), frames=frames), height, ranges)
    names = [str(int(step)) for step in steps]
    return fig.update_layout(
        title=f"Latent means of {means.shape[1]:,} fixed digits during training",
        **play_controls(names, names, 120, "step ", active=len(names) - 1),
    )


def loss_parts_figure(records: Sequence[dict], height: int = 260) -> go.Figure:
    """The two terms of the negative ELBO per logged step: reconstruction (nats per image) and KL."""
    steps = [r["step"] for r in records]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reconstruction −log p(x|z)", "KL(q(z|x) ‖ N(0, I))"))
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=[r["reconstruction"] for r in records],
            mode="lines",
            name="reconstruction",
            line={"color": CLASS_COLORS[0]},
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(x=steps, y=[r["kl"] for r in records], mode="lines", name="KL", line={"color": CLASS_COLORS[1]}),
        1,
        2,
    )
    fig.update_layout(height=height, margin=MARGIN, showlegend=False)
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="nats per digit", col=1)
    return fig


def marked_manifold(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The manifold grid image (uint8 [28 ny, 28 nx], largest z2 on top) in RGB with a red ring where `point`
    falls: between cell centres by linear interpolation of the grid's (possibly uneven) coordinates."""
    rgb = np.repeat(image[..., None], 3, axis=2).copy()
    cell = image.shape[1] // len(xs)
    col = np.interp(point[0], xs, cell * np.arange(len(xs)) + cell / 2)
    row = np.interp(point[1], ys, cell * np.arange(len(ys))[::-1] + cell / 2)  # row 0 is the largest z2
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    ring = np.abs(np.hypot(yy - row, xx - col) - cell * 0.55) < max(1.5, cell / 14)
    rgb[ring] = (230, 40, 40)
    return rgb


def _where_dense(density: np.ndarray, share: float = 0.02) -> np.ndarray:
    """The density with its near-zero floor cut away (NaN), so each class's surface shows only its hill and
    does not hide the others under a flat sheet."""
    return np.where(density >= share * density.max(), density, np.nan)


def _coarse(grid: Densities, side: int = MAX_SURFACE_SIDE) -> tuple[np.ndarray, np.ndarray, int]:
    """Every k-th mesh point, k chosen so that at most `side` remain per axis: 3-D surfaces and contour lines
    are drawn by the browser, whose cost grows with the points, while the shapes stay the same."""
    k = max(1, -(-len(grid.xs) // side))
    return grid.xs[::k], grid.ys[::k], k


def density_surface(grid: Densities, classes: Sequence[int], overall: bool, height: int = 560) -> go.Figure:
    """Per-class densities as 3-D surfaces in class colours (and the overall one in grey)."""
    xs, ys, k = _coarse(grid)
    fig = go.Figure()
    for c in classes:
        if c in grid.per_class:
            color = CLASS_COLORS[c]
            fig.add_trace(
                go.Surface(
                    x=xs,
                    y=ys,
                    z=_where_dense(grid.per_class[c][::k, ::k]),
                    name=str(c),
                    showscale=False,
                    colorscale=[[0, "#f4f4f4"], [1, color]],  # pale at the foot, the class colour at the top
                    opacity=0.8,
                    showlegend=True,
                    hovertemplate=f"class {c}<br>z₁ %{{x:.2f}}<br>z₂ %{{y:.2f}}<br>p %{{z:.3f}}",
                )
            )
    if overall:
        fig.add_trace(
            go.Surface(
                x=xs,
                y=ys,
                z=grid.overall[::k, ::k],
                name="all digits",
                showscale=False,
                colorscale="Greys",
                opacity=0.5,
                showlegend=True,
            )
        )
    # The legend above the scene, not beside it: in a half-width column a side legend left the scene so narrow
    # that its box and the density axis's ticks ran off the left edge.
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "title": "class (height: density)", "y": 1.0, "yanchor": "bottom", "x": 0},
        scene={
            "xaxis": {"title": "z₁", "nticks": 5},
            "yaxis": {"title": "z₂", "nticks": 5},
            "zaxis": {"title": "", "nticks": 4},  # a title there falls off the scene's left edge: the legend names it
            "aspectratio": {"x": 1, "y": 1, "z": 0.6},
            "camera": {"eye": {"x": 1.75, "y": -1.75, "z": 1.2}},  # far enough that the whole box and its labels fit
        },
    )
    return fig


def _density_trace(grid: Densities, z: np.ndarray, colorscale="Blues", name: str = "density") -> go.Contour:
    xs, ys, k = _coarse(grid)
    return go.Contour(
        x=xs,
        y=ys,
        z=z[::k, ::k],
        colorscale=colorscale,
        showscale=False,
        name=name,
        contours={"coloring": "heatmap"},
        line={"width": 0.5},
        opacity=0.55,
        hoverinfo="skip",
    )


def density_map(grid: Densities, points: np.ndarray, labels: np.ndarray, classes: Sequence[int], height=560):
    """The overall density as a filled contour map (or the chosen classes' summed), with the points."""
    chosen = [grid.per_class[c] for c in classes if c in grid.per_class]
    z = grid.overall if not chosen or len(chosen) == len(grid.per_class) else np.sum(chosen, 0) / len(chosen)
    keep = np.isin(labels, list(classes))
    fig = go.Figure([_density_trace(grid, z), *_class_traces(points[keep], labels[keep], size=3, opacity=0.6)])
    return _square(fig, height, [[grid.xs[0], grid.xs[-1]], [grid.ys[0], grid.ys[-1]]])


def paths_figure(grid: Densities, path: np.ndarray, color: str = "#111", height: int = 520) -> go.Figure:
    """Sample paths [f, n, 2] over the density map: lines from the start (circle) to the current point."""
    fig = go.Figure([_density_trace(grid, grid.overall, "Greys")])
    n = path.shape[1]
    xs = np.concatenate([np.append(path[:, k, 0], np.nan) for k in range(n)])
    ys = np.concatenate([np.append(path[:, k, 1], np.nan) for k in range(n)])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="paths", line={"color": color, "width": 1.2}, opacity=0.7))
    fig.add_trace(
        go.Scatter(
            x=path[0, :, 0],
            y=path[0, :, 1],
            mode="markers",
            name="start (noise)",
            marker={"symbol": "circle-open", "size": 7, "color": "#555"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=path[-1, :, 0], y=path[-1, :, 1], mode="markers", name="now", marker={"size": 8, "color": "#d62728"}
        )
    )
    ranges = robust_ranges(np.vstack([path[-1], np.stack([grid.xs[[0, -1]], grid.ys[[0, -1]]], 1)]))
    return _square(fig, height, ranges, legend="")


def final_points_figure(grid: Densities, samples: np.ndarray, predicted: np.ndarray, height: int = 520):
    """The finished samples (coloured by the classifier's label) over each class's density contours."""
    xs, ys, k = _coarse(grid)
    fig = go.Figure()
    for c, z in grid.per_class.items():
        color = CLASS_COLORS[c]
        fig.add_trace(
            go.Contour(
                x=xs,
                y=ys,
                z=z[::k, ::k],
                showscale=False,
                ncontours=4,
                name=f"class {c} density",
                contours={"coloring": "lines"},
                colorscale=[[0, color], [1, color]],
                line={"width": 1},
                hoverinfo="skip",
                showlegend=True,
                legendgroup="densities",
                legendgrouptitle={"text": "densities"} if c == min(grid.per_class) else None,
            )
        )
    for c in np.unique(predicted):
        s = samples[predicted == c]
        fig.add_trace(
            go.Scatter(
                x=s[:, 0],
                y=s[:, 1],
                mode="markers",
                name=f"read as {c}",
                marker={
                    "symbol": "x",
                    "size": 8,
                    "color": CLASS_COLORS[int(c)],
                    "line": {"width": 1, "color": "black"},
                },
            )
        )
    return _square(fig, height, [[grid.xs[0], grid.xs[-1]], [grid.ys[0], grid.ys[-1]]], legend="samples")


def strips_image(digits: np.ndarray, pad: int = 2) -> np.ndarray:
    """uint8 digits [n, f, 28, 28] -> one image, a row (strip) per sample, a column per shown step."""
    n, f, h, w = digits.shape
    out = np.full((n * (h + pad) - pad, f * (w + pad) - pad), 255, np.uint8)
    for i in range(n):
        for j in range(f):
            out[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = digits[i, j]
    return out
