"""Images in and out: user uploads (checked), bundled photographs, tensors in [-1, 1], and back to pictures
(uint8, tiles of a batch, PNG and GIF bytes). No torchvision: PIL and numpy do it all.

Uploads are read with Pillow under explicit limits, and anything the app cannot show faithfully is refused
with a sentence: empty or broken files, formats other than PNG/JPEG/WebP, animations, CMYK, 16-bit or
high-bit-depth images, and images whose declared size would be a decompression bomb.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import BadInputError
from core.limits import max_upload_bytes

MAX_PIXELS = 40_000_000  # declared width x height above this is refused before decoding
MAX_SIDE = 12_000  # and either side above this (a 1 x 39,999,999 image passes the area cap)
UPLOAD_SQUARE = 512  # an upload is kept as its centred square at most this size (the largest the pages use)
ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "MPO": "JPEG"}
PHOTOS = {
    "astronaut": "Astronaut (Eileen Collins)",
    "chelsea": "Chelsea the cat",
    "coffee": "Coffee cup",
    "rocket": "Rocket launch",
    "camera": "Cameraman (grey)",
    "moon": "Moon surface (grey)",
    "hubble_deep_field": "Hubble deep field",
    "colorwheel": "Colour wheel",
}


def read_upload(data: bytes, name: str = "upload") -> Image.Image:
    """Decode an uploaded image, refusing what the app cannot use; returns an RGB or L image."""
    if not data:
        raise BadInputError(f"{name} is empty (0 bytes).")
    if len(data) > (limit := max_upload_bytes()):
        raise BadInputError(f"{name} is {len(data) / 2**20:.1f} MB; images up to {limit / 2**20:g} MB are accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in ALLOWED_FORMATS:
                raise BadInputError(f"{name} is a {fmt or 'non-image'} file; upload a PNG, JPEG or WebP image.")
            width, height = img.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise BadInputError(
                    f"{name} declares {width:,} x {height:,} pixels; images up to {MAX_SIDE:,} pixels a side and "
                    f"{MAX_PIXELS // 1_000_000} million in all are accepted: resize it first."
                )
            if fmt == "PNG" and not _png_data_complete(data, width, height):
                raise BadInputError(f"{name} is damaged or truncated: its pixel data end before the image does.")
            if getattr(img, "n_frames", 1) > 1 or getattr(img, "is_animated", False):
                raise BadInputError(f"{name} is animated; upload a single still image.")
            if img.mode == "CMYK":
                raise BadInputError(f"{name} is a CMYK image (a print colour space); save it as RGB and upload again.")
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F") or img.mode.startswith("I;16"):
                raise BadInputError(f"{name} has 16 or 32 bits per channel; save it as an 8-bit image.")
            img.load()  # decode now, so that truncated files fail here
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadInputError(f"{name} declares an enormous size (a decompression bomb); it was not decoded.") from e
    except UnidentifiedImageError as e:
        raise BadInputError(f"{name} is not an image Pillow can read (is it really a PNG, JPEG or WebP?).") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInputError(f"{name} is damaged or truncated and cannot be decoded.") from e
    img = ImageOps.exif_transpose(img)
    if img.mode in ("L", "LA", "1"):
        return img.convert("L")
    return img.convert("RGB")


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_data_complete(data: bytes, width: int, height: int) -> bool:
    """Whether a PNG's compressed pixel stream (its IDAT chunks) holds every row its header declares.

    Pillow fills a short stream with black without a word, and a 68-byte file can so declare 40 million
    pixels. The stream is inflated in 1 MB pieces that are counted and dropped: constant memory."""
    depth, colour, interlace = data[24], data[25], data[28]
    bits = depth * _PNG_CHANNELS.get(colour, 4)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            expected += h * (1 + -(-w * bits // 8))  # a filter byte, then the row's packed samples
    inflate, got, pos = zlib.decompressobj(), 0, 8
    try:
        while pos + 8 <= len(data) and got < expected:
            length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
            if kind == b"IDAT":
                chunk = data[pos + 8 : pos + 8 + length]
                while chunk and got < expected:
                    got += len(inflate.decompress(chunk, 2**20))
                    chunk = inflate.unconsumed_tail
            pos += 12 + length
    except zlib.error:
        return False
    return got >= expected


def center_square(img: Image.Image, size: int) -> Image.Image:
    """Crop the largest centred square and resize it to size x size (area-averaging when shrinking)."""
    if not 8 <= size <= 512:
        raise BadInputError("The image size must be between 8 and 512 pixels.")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)).resize(
        (size, size), Image.Resampling.BOX if side > size else Image.Resampling.BICUBIC
    )


def photo(name: str) -> Image.Image:
    """One of the photographs that ship with scikit-image (public domain or freely licensed)."""
    if name not in PHOTOS:
        raise BadInputError(f"Unknown photograph {name!r}.")
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    return Image.fromarray(array).convert("L" if array.ndim == 2 else "RGB")


def to_tensor(img: Image.Image, grey: bool = False) -> torch.Tensor:
    """A PIL image -> float tensor [C, H, W] in [-1, 1] (C = 1 for grey, 3 for colour)."""
    img = img.convert("L" if grey else "RGB")
    array = np.asarray(img, dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


def as_digit(img: Image.Image, side: int = 28) -> tuple[torch.Tensor, bool]:
    """A picture as an MNIST-style digit: grey, its centred square at side x side, a light digit on a dark
    ground (a picture whose border is mostly light is inverted), [1, side, side] in [-1, 1]; and whether it was
    inverted."""
    grey = np.asarray(center_square(img.convert("L"), side), dtype=np.float32) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    flip = bool(border.mean() > 0.5)
    if flip:
        grey = 1 - grey
    return torch.from_numpy(grey[None] * 2 - 1), flip


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """Data-set images uint8 [..., C, H, W] -> float in [-1, 1]."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1)


# ---- back to pictures -----------------------------------------------------------------------------------


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """[B, C, H, W] floats in `value_range` -> uint8 [B, H, W, C], clipped."""
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 [B, H, W, C] -> one uint8 image [rows*(H+pad)+pad, cols*(W+pad)+pad, C], row by row."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError("tile takes a uint8 array [B, H, W, C].")
    b, h, w, c = images.shape
    ncols = max(1, min(ncols or int(np.ceil(np.sqrt(b))), b))
    nrows = int(np.ceil(b / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for k in range(b):
        top, left = pad + (k // ncols) * (h + pad), pad + (k % ncols) * (w + pad)
        out[top : top + h, left : left + w] = images[k]
    return out


def png_bytes(image: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    """uint8 [H, W, C] or [H, W] -> PNG file bytes, with `text` (keyword -> Latin-1 text) as tEXt chunks."""
    info = None
    if text:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for keyword, value in text.items():
            info.add_text(keyword, value)
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(
        buf, format="PNG", pnginfo=info
    )
    return buf.getvalue()


def gif_bytes(
    frames: list[np.ndarray], duration_ms: int = 120, final_hold_ms: int = 1200, comment: str | None = None
) -> bytes:
    """uint8 [H, W, C] or [H, W] frames -> an animated GIF that loops, holding the last frame a little longer;
    `comment` (ASCII) goes into a comment extension."""
    if not frames:
        raise ValueError("A GIF needs at least one frame.")
    images = [Image.fromarray(f[..., 0] if f.ndim == 3 and f.shape[-1] == 1 else f) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [final_hold_ms]
    buf = io.BytesIO()
    extra = {} if comment is None else {"comment": comment.encode("ascii")}
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, **extra)
    return buf.getvalue()


def image_strip(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0), height: int = 56) -> np.ndarray:
    """Images [n, C, H, W] side by side in one row, enlarged to at least `height` pixels high."""
    return enlarge(tile(to_uint8(images, value_range), ncols=len(images)), height)


def enlarge(image: np.ndarray, min_side: int = 128) -> np.ndarray:
    """A small uint8 image [H, W, C] enlarged by an integer factor (nearest neighbour, so pixels stay crisp on
    screen) to at least min_side high; a single channel comes back as [H, W], as st.image and PIL expect."""
    factor = max(1, -(-min_side // image.shape[0]))
    big = image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image
    return big[..., 0] if big.ndim == 3 and big.shape[-1] == 1 else big
