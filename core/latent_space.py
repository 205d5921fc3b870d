"""A 2-D VAE's latent plane: digits encoded to points, and points (or a whole grid) decoded to digits.

Images here are uint8 [N, 1, 28, 28] (0 black .. 255 white) on the way in and out; the VAE itself works
on intensities in [0, 1]. Encoding uses the mean of q(z | x): the point the encoder believes in.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm

from core.errors import BadInputError
from core.models.vae import ConvVAE

MAX_MANIFOLD = 30  # digits per side of the manifold grid
MAX_DECODE = 5_000


@torch.no_grad()
def encode_means(vae: ConvVAE, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Latent means [N, 2] of uint8 digits [N, 1, 28, 28]."""
    out = []
    for start in range(0, len(images), batch):
        x = torch.tensor(images[start : start + batch], dtype=torch.float32) / 255
        out.append(vae.encode(x)[0].double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


@torch.no_grad()
def decode_points(vae: ConvVAE, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 digits [N, 28, 28] for latent points [N, 2]."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32))
    if z.ndim != 2 or z.shape[1] != vae.latent_dim or len(z) > MAX_DECODE:
        raise BadInputError(f"Decode 1 to {MAX_DECODE:,} points of dimension {vae.latent_dim}.")
    images = vae.decode(z)[:, 0]
    return (images * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def manifold_axes(
    n: int, spacing: str, extent: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates (xs, ys), each [n], increasing.

    "linear": evenly over `extent` ((lo, hi) per axis). "gaussian": the prior's quantiles,
    Phi^-1 of (k + 1/2) / n: evenly spaced in probability under N(0, I), so each cell holds the same prior
    mass and the dense centre gets more digits (Kingma & Welling's manifold figures)."""
    if not 2 <= n <= MAX_MANIFOLD:
        raise BadInputError(f"The manifold grid has 2 to {MAX_MANIFOLD} digits per side.")
    if spacing == "gaussian":
        q = norm.ppf((np.arange(n) + 0.5) / n)
        return q, q.copy()
    if spacing != "linear":
        raise BadInputError(f"Grid spacing {spacing!r}: use 'linear' or 'gaussian'.")
    if extent is None:
        raise BadInputError("A linear grid needs the extent it spans.")
    lo, hi = extent
    return np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)


def manifold_image(vae: ConvVAE, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The digits decoded at every (x, y) of the grid, tiled into one uint8 image [28 ny, 28 nx].

    The top row is the largest y, so the image reads like a plot of the plane."""
    gx, gy = np.meshgrid(xs, ys[::-1])
    digits = decode_points(vae, np.stack([gx.ravel(), gy.ravel()], 1))
    ny, nx = len(ys), len(xs)
    return digits.reshape(ny, nx, 28, 28).transpose(0, 2, 1, 3).reshape(ny * 28, nx * 28)
