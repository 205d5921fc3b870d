"""A freehand drawing (the Fabric.js JSON of streamlit-drawable-canvas) -> a 2-D point cloud.

Strokes are read as polylines in canvas pixels (y pointing down): freedraw paths (M / L / Q / C commands,
curves flattened), straight lines, and dots (the canvas's point mode, stored as circles). Each object's
own transform (origin, position, scale, flip, rotation) is applied, so moved or resized strokes land
where they are seen. Points are then spread along the strokes uniformly by length (each dot counts as a
short stroke) with Gaussian jitter, and y is flipped so the cloud looks as drawn.

The JSON comes from the browser, where a client can send anything: its structure, every number (finite) and
every path command (its letter and count of arguments) are checked, and its size is capped, so a forged
drawing gets a sentence, never an exception. A drawing is converted once (`canvas_strokes`); sampling points
from it takes the `Strokes`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import BadInputError

_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}
CURVE_SAMPLES = 8  # points per Bezier segment when flattening a path
_ARGUMENTS = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0}  # numbers each path command takes
MAX_OBJECTS = 5_000  # strokes, lines and dots in one drawing
MAX_COMMANDS = 200_000  # path commands over all strokes (a long freehand stroke has a few hundred)
MAX_COORDINATE = 1e6  # pixels; the canvas is a few hundred wide


def _refuse(what: str) -> BadInputError:
    return BadInputError(f"The drawing cannot be read ({what}); clear the canvas and draw again.")


def _number(value: Any, what: str) -> float:
    """A finite number of reasonable size from the client's JSON, else BadInputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(f"{what} is not a number")
    if isinstance(value, int) and abs(value) > MAX_COORDINATE:  # JSON integers can be any size
        raise _refuse(f"{what} is too large")
    if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
        raise _refuse(f"{what} is {value}")
    return float(value)


def _field(obj: Mapping[str, Any], key: str, default: float) -> float:
    value = obj.get(key, default)
    return default if value is None else _number(value, key)


@dataclass(frozen=True)
class Strokes:
    lines: list[np.ndarray]  # polylines [k, 2] in canvas pixels, y down
    dots: np.ndarray  # [m, 2] dot centres

    @property
    def extent(self) -> float:
        """The larger side of the bounding box of everything drawn, in pixels."""
        pts = np.concatenate([*self.lines, self.dots.reshape(-1, 2)]) if self.lines else self.dots.reshape(-1, 2)
        return float((pts.max(0) - pts.min(0)).max()) if len(pts) else 0.0


def _bezier(p0: np.ndarray, controls: Sequence[np.ndarray]) -> np.ndarray:
    """Points of a quadratic or cubic Bezier segment starting after p0 (p0 itself excluded)."""
    u = np.linspace(0, 1, CURVE_SAMPLES + 1)[1:, None]
    pts = [p0, *controls]
    n = len(pts) - 1
    return sum(math.comb(n, k) * (1 - u) ** (n - k) * u**k * pts[k] for k in range(n + 1))


def _path_points(commands: Sequence[Sequence[Any]]) -> list[np.ndarray]:
    """SVG-like absolute path commands -> polylines (one per M)."""
    lines: list[list[np.ndarray]] = []
    cur = np.zeros(2)
    for cmd in commands:
        if not isinstance(cmd, list) or not cmd or not isinstance(cmd[0], str) or cmd[0].upper() not in _ARGUMENTS:
            raise _refuse("a path command is not one of M, L, Q, C, Z")
        op = cmd[0].upper()
        if len(cmd) - 1 != _ARGUMENTS[op]:
            raise _refuse(f"a {op} command has {len(cmd) - 1} numbers, not {_ARGUMENTS[op]}")
        args = np.array([_number(v, "a path coordinate") for v in cmd[1:]])
        if op == "M":
            cur = args[:2]
            lines.append([cur[None]])
            continue
        if not lines:
            lines.append([cur[None]])
        if op == "L":
            cur = args[:2]
            lines[-1].append(cur[None])
        elif op in ("Q", "C"):
            controls = list(args.reshape(-1, 2))
            lines[-1].append(_bezier(cur, controls))
            cur = controls[-1]
        elif op == "Z":
            lines[-1].append(lines[-1][0][:1])
    return [np.concatenate(parts) for parts in lines]


def _length(polyline: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum())


def _placement(obj: Mapping[str, Any], width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre, 2x2 matrix) mapping object-local coordinates (about its centre) to canvas pixels."""
    sx = _field(obj, "scaleX", 1.0) * (-1 if obj.get("flipX") else 1)
    sy = _field(obj, "scaleY", 1.0) * (-1 if obj.get("flipY") else 1)
    a = math.radians(_field(obj, "angle", 0.0))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    stroke = _field(obj, "strokeWidth", 0.0)
    box = np.array([(width + stroke) * abs(sx), (height + stroke) * abs(sy)])
    origin = np.array(
        [_ORIGIN.get(str(obj.get("originX", "left")), 0.0), _ORIGIN.get(str(obj.get("originY", "top")), 0.0)]
    )
    centre = np.array([_field(obj, "left", 0.0), _field(obj, "top", 0.0)]) + rot @ ((0.5 - origin) * box)
    return centre, rot @ np.diag([sx, sy])


def canvas_strokes(json_data: Any) -> Strokes:
    """Polylines and dots of every supported object on the canvas (other shapes are ignored); BadInputError for
    JSON that no canvas writes (see the module's docstring)."""
    if json_data is None:
        json_data = {}
    if not isinstance(json_data, Mapping):
        raise _refuse("it is not a JSON object")
    objects = json_data.get("objects") or []
    if not isinstance(objects, list) or not all(isinstance(obj, Mapping) for obj in objects):
        raise _refuse("its objects are not a list of shapes")
    if len(objects) > MAX_OBJECTS:
        raise BadInputError(f"The drawing has {len(objects):,} strokes; draw at most {MAX_OBJECTS:,}.")
    paths = [obj.get("path") or [] for obj in objects if str(obj.get("type", "")).lower() == "path"]
    if not all(isinstance(p, list) for p in paths):
        raise _refuse("a stroke's path is not a list")
    if sum(map(len, paths)) > MAX_COMMANDS:
        raise BadInputError(f"The drawing has more than {MAX_COMMANDS:,} pen movements; draw fewer, shorter strokes.")
    lines: list[np.ndarray] = []
    dots: list[np.ndarray] = []
    for obj in objects:
        kind = str(obj.get("type", "")).lower()
        if kind == "path":
            local = [p for p in _path_points(obj.get("path") or []) if len(p)]
            if not local:
                continue
            if "left" not in obj and "top" not in obj:  # no placement saved: the path's own coordinates
                lines += local
                continue
            allpts = np.concatenate(local)
            lo, hi = allpts.min(0), allpts.max(0)
            centre, m = _placement(obj, *(hi - lo))
            lines += [centre + (p - (lo + hi) / 2) @ m.T for p in local]
        elif kind == "line":
            ends = np.array([[_field(obj, k, 0.0) for k in pair] for pair in (("x1", "y1"), ("x2", "y2"))])
            centre, m = _placement(obj, *np.abs(ends[1] - ends[0]))
            lines.append(centre + ends @ m.T)
        elif kind == "circle":
            r = _field(obj, "radius", 0.0)
            centre, _ = _placement(obj, 2 * r, 2 * r)
            dots.append(centre)
    return Strokes(lines, np.array(dots, dtype=float).reshape(-1, 2))


def drawing_to_points(
    strokes: Strokes,
    n: int,
    spread: float = 4.0,
    generator: torch.Generator | None = None,
    canvas_height: float = 0.0,
) -> torch.Tensor:
    """n points [n, 2] (float64, canvas pixels with y up: y = canvas_height - y_pixel) along the drawing.

    Each point picks a place on the strokes uniformly by length (a dot weighs as a stroke of length
    4 * spread) and adds N(0, spread^2) jitter. Raises BadInputError for an empty or one-dot drawing.
    """
    if not strokes.lines and not len(strokes.dots):
        raise BadInputError("The canvas is empty: draw a shape (a few strokes or dots) first.")
    if strokes.extent < 3:
        raise BadInputError("The drawing is a single dot, which has no shape to learn: draw strokes or several dots.")
    # Segments weigh their length; dots (and strokes shorter than a pixel: clicks) weigh 4 * spread, at least 4.
    lines = [p for p in strokes.lines if _length(p) >= 1]
    dots = np.concatenate([strokes.dots, *(p[:1] for p in strokes.lines if _length(p) < 1)])
    starts = np.concatenate([*(p[:-1] for p in lines), dots])
    vecs = np.concatenate([*(np.diff(p, axis=0) for p in lines), np.zeros_like(dots)])
    weights = np.concatenate(
        [np.linalg.norm(vecs[: len(vecs) - len(dots)], axis=1), np.full(len(dots), 4 * max(spread, 1.0))]
    )
    w = torch.as_tensor(weights, dtype=torch.float64)
    pick = torch.multinomial(w, n, replacement=True, generator=generator)
    u = torch.rand(n, 1, generator=generator, dtype=torch.float64)
    base = torch.as_tensor(starts)[pick] + u * torch.as_tensor(vecs)[pick]
    pts = base + spread * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return torch.stack([pts[:, 0], canvas_height - pts[:, 1]], 1)
