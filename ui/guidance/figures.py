"""The Guidance page's figures: the sweep's measures against the scale and against each other (the trade-offs),
one line per series (a guidance method with its settings), with standard errors and the value real digits get
at the same sample size; the exact 2-D mixture's trade-offs and its samples over the exact densities. Pure
builders, no Streamlit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labs.guidance.sweep import SweepRow
from ui.common.charts import MARGIN, SERIES_COLORS

MEASURES = (
    ("accuracy", "accuracy_se", "class accuracy (higher: more faithful)"),
    ("diversity", "diversity_se", "within-class diversity (features)"),
    ("fd_lenet", "fd_se", "FD-LeNet (lower: nearer real digits)"),
)


def sweep_figure(series: Mapping[str, Sequence[SweepRow]], real: SweepRow | None, height: int = 380) -> go.Figure:
    """Accuracy, diversity and FD-LeNet against the guidance scale, each series a colour; dashed: real held-out
    digits of the same number (what a perfect model would score at this sample size)."""
    fig = make_subplots(1, 3, subplot_titles=[t for _, _, t in MEASURES], horizontal_spacing=0.07)
    for i, (name, rows) in enumerate(series.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        for col, (value, se, _) in enumerate(MEASURES, start=1):
            fig.add_trace(
                go.Scatter(
                    x=[r.scale for r in rows],
                    y=[getattr(r, value) for r in rows],
                    error_y={"array": [getattr(r, se) for r in rows], "width": 3},
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color},
                ),
                1,
                col,
            )
    if real is not None:
        for col, (value, _, _) in enumerate(MEASURES, start=1):
            label = {"annotation_text": "real digits", "annotation_position": "top left"}
            fig.add_hline(
                y=getattr(real, value), line={"dash": "dash", "color": "#6c757d", "width": 1.2}, row=1, col=col, **label
            )
    fig.update_xaxes(title="guidance scale w (CFG++: λ)")
    fig.update_layout(height=height, margin={**MARGIN, "t": 50}, legend={"orientation": "h", "y": -0.25})
    return fig


def measure(row: object, name: str) -> float:
    """A row's measure by name, the PRDC ones (precision, recall, ... and their SEs) from its `prdc`."""
    manifold = getattr(row, "prdc", None)
    return getattr(manifold, name) if hasattr(manifold, name) else getattr(row, name)


TRADES = (
    (("accuracy", "accuracy_se", "class accuracy"), ("fd_lenet", "fd_se", "FD-LeNet")),
    (("precision", "precision_se", "precision (quality)"), ("recall", "recall_se", "recall (diversity)")),
    (("density", "density_se", "density (quality)"), ("coverage", "coverage_se", "coverage (diversity)")),
)


def trade_figure(
    series: Mapping[str, Sequence[object]],
    real: object | None,
    pairs: Sequence[tuple[tuple[str, str, str], tuple[str, str, str]]] = TRADES,
    height: int = 380,
) -> go.Figure:
    """Each pair of measures against each other, one line per series through its scales (hover: the scale), so
    that methods whose scales mean different things compare at equal quality; a grey cross: real data."""
    fig = make_subplots(1, len(pairs), horizontal_spacing=0.08)
    for i, (name, rows) in enumerate(series.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        for col, ((x, xse, _), (y, yse, _)) in enumerate(pairs, start=1):
            fig.add_trace(
                go.Scatter(
                    x=[measure(r, x) for r in rows],
                    y=[measure(r, y) for r in rows],
                    error_x={"array": [measure(r, xse) for r in rows], "width": 2, "thickness": 1},
                    error_y={"array": [measure(r, yse) for r in rows], "width": 2, "thickness": 1},
                    text=[f"{r.scale:g}" for r in rows],
                    hovertemplate=f"{name}<br>scale %{{text}}<br>%{{x:.3f}}, %{{y:.3f}}<extra></extra>",
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color},
                ),
                1,
                col,
            )
    for col, ((x, _, xt), (y, _, yt)) in enumerate(pairs, start=1):
        if real is not None:
            fig.add_trace(
                go.Scatter(
                    x=[measure(real, x)],
                    y=[measure(real, y)],
                    mode="markers",
                    marker={"symbol": "x", "size": 11, "color": "#6c757d"},
                    name="real data",
                    legendgroup="real",
                    showlegend=col == 1,
                ),
                1,
                col,
            )
        fig.update_xaxes(title=xt, row=1, col=col)
        fig.update_yaxes(title=yt, row=1, col=col)
    fig.update_layout(height=height, margin={**MARGIN, "t": 20}, legend={"orientation": "h", "y": -0.3})
    return fig


def sweep_rows(series: Mapping[str, Sequence[SweepRow]], real: SweepRow | None) -> list[dict[str, object]]:
    """The table under the figure (and its CSV); the real digits' row has no scale ("—")."""

    def row(name: str, r: SweepRow) -> dict[str, object]:
        return {
            "Series": name,
            "Scale": "—" if math.isnan(r.scale) else f"{r.scale:g}",
            "Samples": r.samples,
            "Accuracy": round(r.accuracy, 4),
            "Accuracy SE": round(r.accuracy_se, 4),
            "Diversity": round(r.diversity, 3),
            "Diversity SE": round(r.diversity_se, 3),
            "FD-LeNet": round(r.fd_lenet, 2),
            "FD SE": round(r.fd_se, 2),
            "Precision": round(r.prdc.precision, 3),
            "Precision SE": round(r.prdc.precision_se, 3),
            "Recall": round(r.prdc.recall, 3),
            "Recall SE": round(r.prdc.recall_se, 3),
            "Density": round(r.prdc.density, 3),
            "Density SE": round(r.prdc.density_se, 3),
            "Coverage": round(r.prdc.coverage, 3),
            "Coverage SE": round(r.prdc.coverage_se, 3),
            "Seconds": round(r.seconds, 2),
        }

    out = [row(name, r) for name, rows in series.items() for r in rows]
    return out + ([row("real held-out digits", real)] if real is not None else [])


def best_rows(series: Mapping[str, Sequence[SweepRow]]) -> list[dict[str, object]]:
    """Each series' scale with the lowest FD-LeNet, and the accuracy it has there: where each method is best."""
    out = []
    for name, rows in series.items():
        best = min(rows, key=lambda r: r.fd_lenet)
        out.append(
            {
                "Series": name,
                "Best scale": f"{best.scale:g}",
                "FD-LeNet": f"{best.fd_lenet:.2f} ± {best.fd_se:.2f}",
                "Accuracy there": f"{best.accuracy:.3f} ± {best.accuracy_se:.3f}",
                "Precision": f"{best.prdc.precision:.3f}",
                "Recall": f"{best.prdc.recall:.3f}",
            }
        )
    return out


EXACT_TRADES = (
    (("coverage", "coverage_se", "coverage (diversity)"), ("log_p", "log_p_se", "mean exact log p(x | c)")),
    (("coverage", "coverage_se", "coverage (diversity)"), ("off_support", "off_support_se", "share off support")),
)


def density_panels(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]], columns: int = 4
) -> go.Figure:
    """One panel per (title, x axis, y axis, density [y, x], points [n, 2] or None), `columns` to a row: the
    density as filled contours, the points over it (at most 1,500), every panel on the same axes, square units."""
    rows = -(-len(panels) // columns)
    cols = min(columns, len(panels))
    fig = make_subplots(
        rows, cols, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.03, vertical_spacing=0.1
    )
    for i, (title, xs, ys, density, pts) in enumerate(panels):
        row, col = divmod(i, cols)
        at = {"row": row + 1, "col": col + 1}
        fig.add_trace(
            go.Contour(
                x=xs,
                y=ys,
                z=density,
                colorscale="Blues",
                showscale=False,
                contours={"coloring": "fill", "showlines": False},
                ncontours=14,
                hoverinfo="skip",
                name=title,
            ),
            **at,
        )
        if pts is not None:
            shown = pts[:1500]
            fig.add_trace(
                go.Scattergl(
                    x=shown[:, 0],
                    y=shown[:, 1],
                    mode="markers",
                    marker={"size": 3, "color": "#e4572e", "opacity": 0.6},
                    showlegend=False,
                    hoverinfo="skip",
                ),
                **at,
            )
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.update_xaxes(range=[xs[0], xs[-1]], showticklabels=False, constrain="domain", **at)
        fig.update_yaxes(range=[ys[0], ys[-1]], showticklabels=False, scaleanchor=axis, constrain="domain", **at)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=60 + 270 * rows, margin={**MARGIN, "t": 50}, plot_bgcolor="white")
    return fig


def exact_rows(rows: Sequence[object]) -> list[dict[str, object]]:
    """The exact study's table: one row per (series, scale), the exact draws first."""
    return [
        {
            "Series": r.series,
            "Scale": "—" if math.isnan(r.scale) else f"{r.scale:g}",
            "Mean log p(x|c)": round(r.log_p, 3),
            "log p SE": round(r.log_p_se, 3),
            "Off support": round(r.off_support, 4),
            "Off support SE": round(r.off_support_se, 4),
            "Coverage": round(r.prdc.coverage, 3),
            "Coverage SE": round(r.prdc.coverage_se, 3),
            "Precision": round(r.prdc.precision, 3),
            "Recall": round(r.prdc.recall, 3),
            "Seconds": round(r.seconds, 2),
        }
        for r in rows
    ]
