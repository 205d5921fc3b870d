"""Uploads: good ones are read and sized, every bad one is refused with a sentence."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.images import PHOTOS, center_square, photo, read_upload, to_tensor
from core.errors import BadInputError
from core.limits import max_upload_bytes
from tests import bad_inputs as bad


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (bad.truncated_png(), "damaged or truncated"),
        (bad.text_as_png(), "not an image"),
        (bad.svg(), "not an image"),
        (bad.animated_gif(), "GIF file"),
        (bad.animated_webp(), "animated"),
        (bad.animated_png(), "animated"),
        (bad.cmyk_jpeg(), "CMYK"),
        (bad.png_16bit(), "16 or 32 bits"),
        (bad.png_bomb(), "decompression bomb"),
        (bad.png_bomb(8000, 8000), "million"),
        (bad.oversized(max_upload_bytes()), "up to 10 MB"),
        (bad.thin_png(), "12,000 pixels a side"),
        (bad.short_stream_png(), "pixel data end before the image does"),
    ],
    ids=[
        "empty",
        "truncated",
        "text",
        "svg",
        "gif",
        "animated-webp",
        "apng",
        "cmyk",
        "16-bit",
        "bomb",
        "too-many-pixels",
        "too-big",
        "1 x 39,999,999",
        "short-pixel-stream",
    ],
)
def test_bad_uploads_are_refused_with_a_sentence(data, message):
    with pytest.raises(BadInputError) as info:
        read_upload(data, "photo.png")
    text = str(info.value)
    assert message in text and text.startswith("photo.png") and text.endswith(".")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_good_uploads_become_square_tensors(fmt):
    buf = io.BytesIO()
    Image.fromarray(np.full((30, 50, 3), 200, dtype=np.uint8)).save(buf, format=fmt)
    img = read_upload(buf.getvalue(), f"x.{fmt.lower()}")
    square = center_square(img, 64)
    assert square.size == (64, 64)
    x = to_tensor(square)
    assert x.shape == (3, 64, 64) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert to_tensor(square, grey=True).shape == (1, 64, 64)


def test_exif_orientation_is_applied():
    buf = io.BytesIO()
    img = Image.new("RGB", (40, 20), "white")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    img.save(buf, format="JPEG", exif=exif)
    assert read_upload(buf.getvalue()).size == (20, 40)


def test_grey_uploads_stay_grey_and_photos_load():
    assert read_upload(bad.png(mode="L")).mode == "L"
    for name in PHOTOS:
        assert photo(name).size[0] >= 128
    with pytest.raises(BadInputError):
        photo("selfie")
    with pytest.raises(BadInputError):
        center_square(photo("camera"), 4)


@pytest.mark.parametrize("shape", [(7, 13), (29, 37, 3), (1, 1), (17, 9, 3)])
def test_interlaced_pngs_are_read_whole(shape):
    """The pixel-stream check counts Adam7's seven passes: a good interlaced file is not refused as short."""
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    img = read_upload(bad.interlaced_png(pixels), "interlaced.png")
    assert np.array_equal(np.asarray(img), pixels)
