"""The toy lab's data pickers: a built-in 2-D/3-D set with its shape parameters, a drawing, or a CSV upload.

Each returns a `PointCloud` (or raises BadInputError with a sentence for the page to show). Clouds are
memoised in the session by what made them, so a rerun does not redraw 100k points.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st
import torch

from core.data.drawing import Strokes, canvas_strokes, drawing_to_points
from core.data.points_csv import points_from_csv
from core.data.toy import MIN_POINTS, TOY_SETS, Param, PointCloud
from core.errors import BadInputError
from core.limits import max_csv_bytes, max_points
from core.text import plain_label
from ui.common.session_runs import TOY_CLOUD

SOURCES = {"2d": "Built-in 2-D", "3d": "Built-in 3-D", "draw": "Draw", "csv": "Upload CSV"}
CANVAS_W, CANVAS_H = 520, 380


def _count_and_seed(prefix: str, default: int = 10_000) -> tuple[int, int]:
    a, b = st.columns(2)
    n = a.number_input(
        "Points", MIN_POINTS, max_points(), default, step=1000, key=f"{prefix}-n", help=f"Up to {max_points():,}."
    )
    seed = b.number_input("Data seed", 0, 2**31 - 1, 0, key=f"{prefix}-seed", help="Same seed, same points.")
    return int(n), int(seed)


def _number(p: Param, key: str, container) -> float | int:
    if p.integer:
        return container.slider(p.title, int(p.low), int(p.high), int(p.default), key=key, help=p.help or None)
    step = float(f"{(p.high - p.low) / 200:.1g}")
    return container.slider(p.title, float(p.low), float(p.high), float(p.default), step, key=key, help=p.help or None)


def _table(p: Param, key: str) -> list[list[float]]:
    frame = pd.DataFrame([list(r) for r in p.default], columns=list(p.columns))
    st.caption(f"{p.help} Add or delete rows in the table (at most 32).")
    edited = st.data_editor(frame, num_rows="dynamic", key=key, hide_index=True, width="stretch")
    return edited.to_numpy(dtype=float, na_value=float("nan")).tolist()


def builtin_cloud(dim: int) -> PointCloud:
    names = [s.name for s in TOY_SETS.values() if s.dim == dim]
    name = st.selectbox("Data set", names, format_func=lambda n: TOY_SETS[n].title, key=f"toy-set-{dim}")
    spec = TOY_SETS[name]
    values = {}
    numbers = [p for p in spec.params if not p.columns]
    cols = st.columns(max(1, min(3, len(numbers))))
    for i, p in enumerate(numbers):
        values[p.name] = _number(p, f"toy-{name}-{p.name}", cols[i % len(cols)])
    for p in spec.params:
        if p.columns:
            values[p.name] = _table(p, f"toy-{name}-{p.name}")
    n, seed = _count_and_seed("toy-builtin")
    key = json.dumps([name, values, n, seed], sort_keys=True)
    return TOY_CLOUD.make(key, lambda: spec.cloud(n, seed, values))


def drawn_cloud() -> PointCloud | None:
    left, right = st.columns([3, 2])
    with right:
        mode = st.radio(
            "Pen", ["freedraw", "line", "point"], horizontal=True, key="toy-draw-mode", format_func=str.capitalize
        )
        spread = st.slider(
            "Spread (pixels)",
            0.0,
            30.0,
            6.0,
            0.5,
            key="toy-draw-spread",
            help="Standard deviation of the jitter around each stroke.",
        )
        n, seed = _count_and_seed("toy-draw", 5000)
    with left:
        try:
            from streamlit_drawable_canvas import st_canvas  # registers a component: import only when drawing
        except Exception:  # the canvas is optional: the rest of the page works without it
            raise BadInputError("The drawing canvas is not available here; pick another data source.") from None
        result = st_canvas(
            stroke_width=3,
            stroke_color="#1f77b4",
            background_color="#ffffff",
            width=CANVAS_W,
            height=CANVAS_H,
            drawing_mode=mode,
            point_display_radius=4,
            key="toy-canvas",
        )
        st.caption("Draw in the box (undo / clear in its toolbar). The drawing becomes points when you release.")
    digest, strokes = _strokes_once(getattr(result, "json_data", None))
    if not strokes.lines and not len(strokes.dots):
        st.info("Draw a shape in the box: a few strokes, lines or dots. It becomes the data set.")
        return None
    key = json.dumps(["drawing", digest, spread, n, seed])

    def build() -> PointCloud:
        pts = drawing_to_points(strokes, n, spread, torch.Generator().manual_seed(seed), CANVAS_H)

        def fresh(m: int, g: torch.Generator) -> torch.Tensor:
            return drawing_to_points(strokes, m, spread, g, CANVAS_H).float()

        return PointCloud(
            points=pts.float(), key=hashlib.sha1(key.encode()).hexdigest(), title="Your drawing", fresh=fresh
        )

    return TOY_CLOUD.make(key, build)


def _strokes_once(drawing: object) -> tuple[str, Strokes]:
    """The canvas's drawing as strokes, converted once per drawing in this session (a rerun for any other widget
    finds it by the hash of its JSON), with that hash; BadInputError for JSON no canvas writes."""
    try:
        digest = hashlib.sha1(json.dumps(drawing, sort_keys=True, allow_nan=False).encode()).hexdigest()
    except (TypeError, ValueError):  # NaN, infinities or objects JSON cannot hold: a forged drawing
        raise BadInputError("The drawing cannot be read (it holds values JSON cannot); clear the canvas.") from None
    memo = st.session_state.get("toy_strokes")
    if memo is None or memo[0] != digest:
        memo = st.session_state["toy_strokes"] = (digest, canvas_strokes(drawing))
    return memo


def csv_cloud() -> PointCloud | None:
    upload = st.file_uploader(
        "CSV with 2 or 3 numeric columns (x, y[, z]); an optional header row",
        type=["csv", "txt", "tsv"],
        key="toy-csv",
        max_upload_size=max(1, max_csv_bytes() // 2**20),
    )
    if upload is None:
        limit = f"at most {max_points():,} rows and {max_csv_bytes() / 2**20:g} MB"
        st.info(f"Upload a CSV file to use your own points ({limit}).")
        return None
    raw = upload.getvalue()
    digest = hashlib.sha1(raw).hexdigest()

    def build() -> PointCloud:
        points, names = points_from_csv(raw)  # float64: kept so, since 1e9 + k / 1000 is one value in float32
        title = f"{plain_label(upload.name)} ({', '.join(names)})"
        return PointCloud(points=points, key=f"csv:{digest}", title=title)

    return TOY_CLOUD.make(f"csv:{digest}", build)


def data_picker() -> PointCloud | None:
    """The source chooser and its controls; the chosen cloud, None while the source waits for input (a
    drawing, an upload), or BadInputError if what was given is unusable."""
    source = st.segmented_control(
        "Source", list(SOURCES), format_func=SOURCES.get, default="2d", required=True, key="toy-source"
    )
    if source in ("2d", "3d"):
        return builtin_cloud(2 if source == "2d" else 3)
    if source == "draw":
        return drawn_cloud()
    return csv_cloud()
