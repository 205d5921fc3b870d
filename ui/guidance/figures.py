"""The Guidance page's figures: the sweep's three measures against the scale, one line per series (guidance
always on, or only in a sigma interval), with standard errors and the value real digits get at the same
sample size. Pure builders, no Streamlit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labs.guidance import SweepRow
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
    fig.update_xaxes(title="guidance scale w")
    fig.update_layout(height=height, margin={**MARGIN, "t": 50}, legend={"orientation": "h", "y": -0.25})
    return fig


def sweep_rows(series: Mapping[str, Sequence[SweepRow]], real: SweepRow | None) -> list[dict[str, object]]:
    """The table under the figure (and its CSV); the real digits' row has no scale ("—")."""

    def row(name: str, r: SweepRow) -> dict[str, object]:
        return {
            "Series": name,
            "Scale w": "—" if math.isnan(r.scale) else f"{r.scale:g}",
            "Samples": r.samples,
            "Accuracy": round(r.accuracy, 4),
            "Accuracy SE": round(r.accuracy_se, 4),
            "Diversity": round(r.diversity, 3),
            "Diversity SE": round(r.diversity_se, 3),
            "FD-LeNet": round(r.fd_lenet, 2),
            "FD SE": round(r.fd_se, 2),
            "Seconds": round(r.seconds, 2),
        }

    out = [row(name, r) for name, rows in series.items() for r in rows]
    return out + ([row("real held-out digits", real)] if real is not None else [])
