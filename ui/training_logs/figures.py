"""Figures and tables for training logs, and the sample grids saved during training: pure builders (no
Streamlit calls)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from core.data.images import enlarge
from core.paths import open_inside
from core.runs.record import Run
from ui.common.charts import LOG_AXIS, SERIES_COLORS, downsample, ema
from ui.common.tables import ABSENT


def curves_figure(
    runs: Sequence[Run],
    key: str,
    against: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = 2000,
) -> go.Figure:
    """One metric of several runs: the raw curve faint, the smoothed one bold; long logs downsampled
    to at most ~max_points points per run, keeping each bucket's extremes."""
    fig = go.Figure()
    for k, run in enumerate(runs):
        x, y = run.series(key, against)
        if len(x) == 0:
            continue
        colour = SERIES_COLORS[k % len(SERIES_COLORS)]
        label = f"{run.name} ({run.source})" if len(runs) > 1 else key
        rx, ry = downsample(x, y, max_points)
        fig.add_trace(
            go.Scattergl(
                x=rx,
                y=ry,
                name=f"{label} raw",
                line={"color": colour, "width": 1},
                opacity=0.35 if smoothing else 1,
                showlegend=smoothing == 0,
            )
        )
        if smoothing > 0:
            sx, sy = downsample(x, ema(y, smoothing), max_points)
            fig.add_trace(go.Scattergl(x=sx, y=sy, name=label, line={"color": colour, "width": 2.5}))
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "wall time (s)" if against == "seconds" else against},
        yaxis={"title": key, **(LOG_AXIS if log_y else {"type": "linear"})},
        legend={"orientation": "h", "y": -0.25},
        title={"text": key, "font": {"size": 13}},
    )
    return fig


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"train.lr": "0.002", ...}, values as short strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            text = str(value)
            flat[name] = text if len(text) <= 120 else text[:117] + "..."
    return flat


def config_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Settings side by side (one column per run), with a Differs column for rows that are not all equal."""
    columns = {f"{r.name} ({r.source})": flatten(r.config) for r in runs}
    keys = sorted({k for c in columns.values() for k in c})
    table = pd.DataFrame({name: [c.get(k, ABSENT) for k in keys] for name, c in columns.items()}, index=keys)
    table.insert(0, "differs", table.nunique(axis=1) > 1)
    return table


def metrics_csv(runs: Sequence[Run]) -> bytes:
    """Every record of every run as one CSV (run, source, then the union of the keys)."""
    frames = [pd.DataFrame(r.metrics).assign(run=r.name, source=r.source) for r in runs if r.metrics]
    if not frames:
        return b""
    table = pd.concat(frames, ignore_index=True)
    first = ["run", "source", "step"]
    table = table[[c for c in first if c in table] + [c for c in table.columns if c not in first]]
    return table.to_csv(index=False).encode()


def read_grid(image: Path | bytes, roots: Sequence[Path] | None = None, min_side: int = 360) -> np.ndarray:
    """A saved grid (a PNG file, or encoded PNG/JPEG bytes as read from TensorBoard) as RGB uint8, enlarged
    with nearest neighbour for a crisp view. A file is opened once through core/paths.open_inside with the run's
    `roots` and read from that handle (an AtlasError with a sentence when it may not be read)."""
    if isinstance(image, Path):
        with open_inside(image, roots) as f:
            image = f.read()
    with Image.open(io.BytesIO(image)) as img:
        array = np.asarray(img.convert("RGB"))
    return enlarge(array, min_side)
