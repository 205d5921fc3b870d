"""Real bad files, built byte by byte: what users upload by mistake (or on purpose)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png(size=(32, 24), mode="RGB") -> bytes:
    buf = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares a 10-gigapixel image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def truncated_png() -> bytes:
    data = png((64, 64))
    return data[: len(data) // 2]


def svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 128, 255, 0)).save(buf, format="JPEG")
    return buf.getvalue()


def png_16bit() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200).save(buf, format="PNG")
    return buf.getvalue()


def text_as_png() -> bytes:
    return b"this is a shopping list, not a picture\n"


def oversized(limit: int) -> bytes:
    return b"\x89PNG" + b"\0" * (limit + 1)


def animated_png() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def thin_png() -> bytes:
    """68 bytes declaring a 1 x 39,999,999 grey image (under the area cap), with 16 bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", 1, 39_999_999, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def short_stream_png(width: int = 4000, height: int = 3000) -> bytes:
    """A well-formed file (every chunk whole, CRCs right) whose pixel stream holds 3 rows of the 3,000 declared:
    Pillow fills the rest with black without a word."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" + b"\x80" * (3 * width) * 3)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def interlaced_png(pixels: np.ndarray) -> bytes:
    """A good Adam7-interlaced 8-bit PNG of `pixels` ([H, W] grey or [H, W, 3] RGB), written by hand (Pillow
    writes none): its pixel stream has seven passes, each row a filter byte and the pass's samples."""
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in ADAM7 for row in pixels[y0::dy, x0::dx] if len(row))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if pixels.ndim == 3 else 0, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
