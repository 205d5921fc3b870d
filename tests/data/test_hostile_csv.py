"""Hostile CSV files (issue: a shared server that input cannot bring down): each is refused from its bytes in
milliseconds, without the parser building millions of cells; names and cells quoted back are short plain labels;
far-offset coordinates keep their precision."""

from __future__ import annotations

import tracemalloc

import pytest
import torch

from core.data.points_csv import points_from_csv
from core.data.toy import PointCloud
from core.errors import BadInputError
from core.labs.toy import ToyRun, ToySettings
from core.text import plain_label

MB = 2**20


def _refused_with_peak(raw: bytes, match: str) -> int:
    """The Python-side memory peak (bytes) of refusing `raw`; the sentence must match."""
    tracemalloc.start()
    try:
        with pytest.raises(BadInputError, match=match):
            points_from_csv(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b",".join(b"%d" % i for i in range(100_000)) + b"\n1,2\n", "Line 1 is 588,889 characters long"),
        (b"1," * 300_000, "Line 1 is 600,000 characters long"),
        (b"x,y\n" + b"1,2\n" * 30 + b"1," * 200_000 + b"\n", "Line 32 is 400,000 characters long"),
        (b"1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1\n" * 500_000, "16 columns"),  # short lines, many fields: 16 MB
    ],
    ids=["100k-field header", "one 600 KB line", "long line deep in", "16 columns in short lines"],
)
def test_files_of_the_wrong_shape_are_refused_before_parsing(raw, match):
    peak = _refused_with_peak(raw, match)
    assert peak < 2 * MB + 1.1 * len(raw)  # the text once, no cells: the 600 KB line used to take 1.6 GB


def test_names_and_cells_come_back_as_short_inert_labels():
    header = "a" * 180 + "<b>*$x$*</b>[link](http://x)"  # markdown, HTML and TeX in a long header
    rows = "".join(f"{i},{i % 7}\n" for i in range(20))
    _, names = points_from_csv(f"{header},y\n{rows}".encode())
    assert len(names[0]) <= 24 and not set(names[0]) & set("<>*$[]`|\\") and names[1] == "y"
    cell = "<img src=x>" + "z" * 150
    with pytest.raises(BadInputError) as refused:
        points_from_csv(f"x,y\n{rows}3,{cell}\n".encode())
    assert "<" not in str(refused.value) and len(str(refused.value)) < 120


@pytest.mark.parametrize(
    ("text", "label"), [("ok name", "ok name"), ("", "?"), ("a\nb\tc", "a b c"), ("[x](y)", "?x?(y)")]
)
def test_plain_label(text, label):
    assert plain_label(text) == label
    long = plain_label("é" * 10_000_000, 30)
    assert len(long) == 30 and long.endswith("…")


def test_far_offset_coordinates_keep_their_precision():
    """100 distinct points at 1e9 + k / 1000: float32 holds 1e9 only to 64, so they used to be 'the same point'."""
    rows = "".join(f"{1e9 + k * 1e-3:.3f},{1e9 - k * 2e-3:.3f}\n" for k in range(100))
    points, _ = points_from_csv(f"x,y\n{rows}".encode())
    assert points.dtype == torch.float64 and len(torch.unique(points[:, 0])) == 100
    cloud = PointCloud(points=points, key="far", title="far")
    run = ToyRun(cloud, ToySettings(width=16, depth=1, batch_size=64))
    data = run.standardizer.transform(points)
    assert float(data.std()) == pytest.approx(1.0, rel=0.05)  # standardised in float64: the shape survives
    assert torch.allclose(run.standardizer.inverse(data), points, atol=1e-6, rtol=0)


def test_old_mac_line_endings_and_quoted_headers_are_still_read():
    rows = "".join(f"{i},{i % 7},{i % 3}\n" for i in range(20))
    points, names = points_from_csv(f"x,y,z\n{rows}".replace("\n", "\r").encode())  # 'CSV (Macintosh)'
    assert points.shape == (20, 3) and names == ["x", "y", "z"]
    rows = "".join(f"{i},{i % 7}\r\n" for i in range(20))
    _, names = points_from_csv(f'"x, m","y, m"\r\n{rows}'.encode())  # the delimiter inside quoted names
    assert names == ["x, m", "y, m"]
    with pytest.raises(BadInputError, match="Line 2 is 400 characters long"):
        points_from_csv(b"x,y\r" + b"1," * 200 + b"\r")
