"""Sample grids saved during training, read back for display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.grids import upscale_nearest


def read_grid(path: Path, min_side: int = 360) -> np.ndarray:
    """A saved grid PNG as RGB uint8, enlarged with nearest neighbour for a crisp view."""
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"))
    return upscale_nearest(array, min_side)
