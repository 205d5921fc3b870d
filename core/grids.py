"""Image batches to pictures: value ranges, uint8, and grids (no torchvision)."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """[B, C, H, W] floats in `value_range` -> uint8 [B, H, W, C], clipped."""
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 [B, H, W, C] -> one uint8 image [rows*(H+pad)+pad, cols*(W+pad)+pad, C], row by row."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError("make_grid takes a uint8 array [B, H, W, C].")
    b, h, w, c = images.shape
    ncols = max(1, min(ncols or int(np.ceil(np.sqrt(b))), b))
    nrows = int(np.ceil(b / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for k in range(b):
        r, col = divmod(k, ncols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = images[
            k
        ]
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] -> PNG file bytes."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 120, final_hold_ms: int = 1200) -> bytes:
    """uint8 [H, W, C] frames -> an animated GIF that loops, holding the last frame a little longer."""
    from io import BytesIO

    from PIL import Image

    if not frames:
        raise ValueError("A GIF needs at least one frame.")
    images = [Image.fromarray(f.squeeze(-1) if f.shape[-1] == 1 else f) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [final_hold_ms]
    buf = BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buf.getvalue()


def upscale_nearest(image: np.ndarray, min_side: int = 128) -> np.ndarray:
    """Enlarge a small uint8 image [H, W, C] by an integer factor (nearest neighbour) to at least min_side."""
    factor = max(1, -(-min_side // image.shape[0]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image
