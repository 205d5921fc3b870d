"""Toy point clouds: every generator, drawings -> points, CSV uploads and standardisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.drawing import canvas_strokes, drawing_to_points
from core.data.points_csv import points_from_csv
from core.data.standardize import Standardizer
from core.data.toy import TOY_SETS, get_toy_set
from core.errors import BadInputError
from core.limits import max_points

NAMES = list(TOY_SETS)


def test_the_registry_holds_every_data_set_of_the_issue():
    two = {n for n, s in TOY_SETS.items() if s.dim == 2}
    three = {n for n, s in TOY_SETS.items() if s.dim == 3}
    assert two == {
        "swiss_roll",
        "moons",
        "circles",
        "eight_gaussians",
        "checkerboard",
        "two_spirals",
        "pinwheel",
        "polygon",
        "mixture_2d",
    }
    assert three == {"swiss_roll_3d", "torus", "helix", "mobius", "s_curve", "sphere", "mixture_3d"}
    assert {n for n, s in TOY_SETS.items() if s.mixture} == {"eight_gaussians", "mixture_2d", "mixture_3d"}


@pytest.mark.parametrize("name", NAMES)
def test_generators_have_the_right_shape_are_finite_and_follow_the_seed(name):
    spec = TOY_SETS[name]
    a = spec.cloud(500, seed=3)
    assert a.points.shape == (500, spec.dim) and a.points.dtype == torch.float32
    assert bool(a.points.isfinite().all())
    assert torch.equal(a.points, spec.cloud(500, seed=3).points)
    assert not torch.equal(a.points, spec.cloud(500, seed=4).points)
    assert a.points.std(0).min() > 0.01  # a cloud, not a point
    fresh = a.fresh(100, torch.Generator().manual_seed(0))
    assert fresh.shape == (100, spec.dim)


@pytest.mark.parametrize("name", NAMES)
def test_generators_accept_their_extreme_parameters(name):
    spec = TOY_SETS[name]
    for pick in (lambda p: p.low, lambda p: p.high):
        params = {p.name: pick(p) for p in spec.params if not p.columns}
        try:
            cloud = spec.cloud(200, 0, params)
        except BadInputError:  # torus / Mobius refuse a tube wider than the ring, with a sentence
            continue
        assert bool(cloud.points.isfinite().all())


def test_shape_parameters_change_the_shape():
    small = get_toy_set("sphere").cloud(2000, 0, {"radius": 1.0, "noise": 0.0}).points
    big = get_toy_set("sphere").cloud(2000, 0, {"radius": 3.0, "noise": 0.0}).points
    assert small.norm(dim=1).allclose(torch.tensor(1.0), atol=1e-5)
    assert big.norm(dim=1).allclose(torch.tensor(3.0), atol=1e-5)
    hexagon = get_toy_set("polygon").cloud(3000, 0, {"sides": 6, "radius": 2.0, "noise": 0.0}).points
    r = hexagon.norm(dim=1)
    assert r.max() <= 2.0 + 1e-5 and r.min() >= 2.0 * 3**0.5 / 2 - 1e-4  # between the apothem and the radius


def test_torus_and_mobius_are_uniform_on_their_surface():
    # On a torus, the inner half (cos v < 0) has area share (pi R - 2 r) / (2 pi R) ... for R = 2, r = 0.7:
    pts = get_toy_set("torus").cloud(40_000, 0, {"major": 2.0, "minor": 0.7, "noise": 0.0}).points.double()
    ring = pts[:, :2].norm(dim=1)
    inner = float((ring < 2.0).double().mean())
    expected = 0.5 - 0.7 / (torch.pi * 2.0)
    assert abs(inner - expected) < 0.01


def test_mixture_tables_are_checked():
    spec = get_toy_set("mixture_2d")
    cloud = spec.cloud(300, 0, {"components": [[0, 0, 1, 1], [5, 5, 0.5, 2]]})
    assert cloud.mixture is not None and cloud.mixture.weights.tolist() == pytest.approx([1 / 3, 2 / 3])
    for bad in ([[0, 0, -1, 1]], [[0, 0, 1, 0]], [[0, 0, 1]], [], [[0, float("nan"), 1, 1]], [["a", 0, 1, 1]]):
        with pytest.raises(BadInputError):
            spec.cloud(300, 0, {"components": bad})


def test_point_counts_and_parameters_are_capped():
    spec = get_toy_set("moons")
    with pytest.raises(BadInputError, match="100,000"):
        spec.cloud(max_points() + 1)
    with pytest.raises(BadInputError, match="between"):
        spec.cloud(100, 0, {"noise": 99.0})
    with pytest.raises(BadInputError, match="no parameter"):
        spec.cloud(100, 0, {"radius": 1.0})
    with pytest.raises(
        BadInputError, match=r"Noise \(std\) must be a finite number and lie between 0 and 0.5 \(got nan\)"
    ):
        spec.cloud(100, 0, {"noise": float("nan")})
    # An integer parameter takes a whole number (4.0 is 4) and refuses 4.5, as the samplers do (core/numbers.py)
    polygon = get_toy_set("polygon")
    sides = polygon.resolve({"sides": 4.0})["sides"]
    assert sides == 4 and isinstance(sides, int)
    with pytest.raises(BadInputError, match=r"Sides must be a whole number \(got 4.5\)"):
        polygon.cloud(100, 0, {"sides": 4.5})
    with pytest.raises(BadInputError, match="Unknown data set"):
        get_toy_set("banana")


# ---- drawing -> points ------------------------------------------------------------------------------------


def _path(points, **extra):
    cmds = [["M", *points[0]], *(["L", *p] for p in points[1:])]
    return {"type": "path", "path": cmds, **extra}


def test_a_freedraw_stroke_becomes_points_along_it_with_y_flipped():
    drawing = {"objects": [_path([(100, 100), (300, 100)])]}
    pts = drawing_to_points(
        canvas_strokes(drawing), 2000, spread=0.0, generator=torch.Generator().manual_seed(0), canvas_height=400
    )
    assert pts.shape == (2000, 2)
    assert pts[:, 1].allclose(torch.tensor(300.0, dtype=torch.float64))  # 400 - 100: y up
    assert pts[:, 0].min() >= 100 - 1e-9 and pts[:, 0].max() <= 300 + 1e-9
    assert abs(float(pts[:, 0].mean()) - 200) < 5  # uniform along the stroke


def test_points_follow_stroke_length_and_dots_count_too():
    long = _path([(0, 0), (300, 0)])
    short = _path([(0, 100), (100, 100)])
    dot = {
        "type": "circle",
        "left": 200,
        "top": 300,
        "radius": 3,
        "strokeWidth": 2,
        "originX": "center",
        "originY": "center",
    }
    pts = drawing_to_points(
        canvas_strokes({"objects": [long, short, dot]}), 8000, 0.0, torch.Generator().manual_seed(0)
    )
    y = -pts[:, 1]  # canvas_height = 0
    share_long = float((y == 0).double().mean())
    share_dot = float((y == 300).double().mean())
    assert share_long == pytest.approx(300 / 404, abs=0.02)  # a dot weighs 4 * max(spread, 1) = 4 pixels
    assert share_dot == pytest.approx(4 / 404, abs=0.005)
    assert torch.allclose(pts[y == 300], torch.tensor([200.0, -300.0], dtype=torch.float64))


def test_quadratic_curves_and_object_transforms_are_applied():
    curve = {"type": "Path", "path": [["M", 0, 0], ["Q", 50, 100, 100, 0]]}
    strokes = canvas_strokes({"objects": [curve]})
    assert strokes.lines[0][:, 1].max() == pytest.approx(50, abs=1)  # the Bezier's apex
    # Moved and doubled: a segment whose own bbox centre is (50, 0), placed with its centre at (400, 200).
    moved = _path([(0, 0), (100, 0)], left=400, top=200, originX="center", originY="center", scaleX=2, scaleY=2)
    line = canvas_strokes({"objects": [moved]}).lines[0]
    np.testing.assert_allclose(line, [[300, 200], [500, 200]])
    fabric_line = {
        "type": "Line",
        "x1": -50,
        "y1": 0,
        "x2": 50,
        "y2": 0,
        "left": 60,
        "top": 70,
        "originX": "center",
        "originY": "center",
    }
    np.testing.assert_allclose(canvas_strokes({"objects": [fabric_line]}).lines[0], [[10, 70], [110, 70]])
    # The canvas's point tool: a circle placed by its left edge and vertical centre.
    point = {
        "type": "Circle",
        "left": 96,
        "top": 50,
        "radius": 3,
        "strokeWidth": 2,
        "originX": "left",
        "originY": "center",
    }
    np.testing.assert_allclose(canvas_strokes({"objects": [point]}).dots, [[100, 50]])


def test_empty_and_single_dot_drawings_are_refused_with_a_sentence():
    g = torch.Generator().manual_seed(0)
    for empty in (None, {}, {"objects": []}, {"objects": [{"type": "rect", "width": 10}]}):
        with pytest.raises(BadInputError, match="empty"):
            drawing_to_points(canvas_strokes(empty), 100, 2.0, g)
    click = _path([(50, 50), (50, 50)])
    with pytest.raises(BadInputError, match="single dot"):
        drawing_to_points(canvas_strokes({"objects": [click]}), 100, 2.0, g)
    dot = {"type": "circle", "left": 50, "top": 50, "radius": 3}
    with pytest.raises(BadInputError, match="single dot"):
        drawing_to_points(canvas_strokes({"objects": [dot]}), 100, 2.0, g)
    two_dots = {"objects": [dot, {**dot, "left": 150}]}
    assert drawing_to_points(canvas_strokes(two_dots), 100, 2.0, g).shape == (100, 2)


# ---- CSV -> points ----------------------------------------------------------------------------------------

ROWS = "\n".join(f"{i},{i * 0.5}" for i in range(20))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("x,y\n" + ROWS, ["x", "y"]),
        (ROWS, ["x", "y"]),
        ("a;b;c\n" + "\n".join(f"{i};{i};{-i}" for i in range(20)), ["a", "b", "c"]),
        ("u\tv\n" + "\n".join(f"{i}\t{i}" for i in range(20)), ["u", "v"]),
        ("x y\n" + "\n".join(f"{i} {i}" for i in range(20)) + "\n\n", ["x", "y"]),
        ("\ufeffx,y,\n" + "\n".join(f"{i},{i}," for i in range(20)), ["x", "y"]),  # BOM, trailing commas
    ],
)
def test_csv_with_2_or_3_numeric_columns_is_read(text, names):
    points, got = points_from_csv(text.encode())
    assert got == names and points.shape == (20, len(names)) and points.dtype == torch.float64


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"x,y\n" + ROWS.encode() + b"\n3,hello", "Line 22: column 'y' holds 'hello'"),
        (b"x,y\n" + ROWS.encode() + b"\n3,NaN", "Line 22: column 'y' is empty or NaN"),
        (b"x,y\n" + ROWS.encode() + b"\n,3", "Line 22: column 'x' is empty or NaN"),
        (b"x\n" + b"\n".join(str(i).encode() for i in range(20)), "1 column"),
        (b"a,b,c,d\n" + b"\n".join(b"1,2,3,4" for _ in range(20)), "4 column"),
        (b"x,y\n1,2\n3,4", "at least 16"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text CSV"),
        (b"x,y\n" + ROWS.encode() + b"\n1,inf", "infinite"),
        (b"x,y\n" + ROWS.encode() + b"\n1,2,3", "well-formed"),
    ],
)
def test_bad_csv_files_get_a_clear_sentence(raw, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        points_from_csv(raw)


def test_csv_row_and_size_caps():
    rows = "\n".join(f"{i},{i}" for i in range(101))
    with pytest.raises(BadInputError, match="more than 100 rows"):
        points_from_csv(rows.encode(), max_rows=100)
    with pytest.raises(BadInputError, match="MB"):
        points_from_csv(b"1,2\n" * (11 * 2**20 // 2))


# ---- standardisation --------------------------------------------------------------------------------------


def test_standardisation_uses_one_scale_and_inverts():
    x = torch.randn(5000, 3, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.1]) + torch.tensor([5.0, -2.0, 0.0])
    st = Standardizer.fit(x)
    y = st.transform(x)
    assert y.mean(0).abs().max() < 1e-10
    assert float(y.var(0, unbiased=False).mean()) == pytest.approx(1.0)
    ratios = x.std(0) / y.std(0)
    assert ratios.allclose(ratios[0])  # one common scale: shapes keep their proportions
    assert st.inverse(y).allclose(x)
    with pytest.raises(BadInputError, match="same point"):
        Standardizer.fit(torch.ones(10, 2))


def test_a_mixture_maps_to_the_standardised_coordinates():
    spec = get_toy_set("eight_gaussians")
    cloud = spec.cloud(20_000, 0, {"radius": 4.0, "std": 0.3})
    st = Standardizer.fit(cloud.points)
    mix = st.mixture(cloud.mixture)
    assert mix.means.allclose(st.transform(cloud.mixture.means))
    drawn = mix.sample(20_000, torch.Generator().manual_seed(1))[0]
    assert drawn.mean(0).abs().max() < 0.03
    assert float(drawn.var(0).mean()) == pytest.approx(1.0, abs=0.03)
