r"""Optimal transport between two Gaussians, in closed form: the exact answer that minibatch couplings approach
(core/diffusion/couplings.py).

For N(m1, S1) and N(m2, S2) and the squared Euclidean cost (Dowson and Landau 1982; Olkin and Pukelsheim 1982;
Givens and Shortt 1984), the squared 2-Wasserstein distance is the Bures formula

    W2^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^{1/2} S1 S2^{1/2})^{1/2}),

and, for S1 positive definite, the optimal map is affine, the gradient of a convex quadratic,

    T(x) = m2 + A (x - m1),    A = S1^{-1/2} (S1^{1/2} S2 S1^{1/2})^{1/2} S1^{-1/2},

with A symmetric positive (semi)definite and A S1 A = S2, so T pushes N(m1, S1) onto N(m2, S2). In one dimension
A = s2 / s1 is the quantile map. Everything is in float64; square roots of symmetric matrices go through their
eigendecomposition (eigenvalues rounded below zero are set to zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.errors import BadInputError

MAX_DIM = 64  # matrix square roots of this size are instant; the page's Gaussians are 2-D


def _matrix(cov: torch.Tensor, dim: int, name: str) -> torch.Tensor:
    c = torch.as_tensor(cov, dtype=torch.float64)
    if c.shape != (dim, dim) or not bool(c.isfinite().all()):
        raise BadInputError(f"The {name} covariance must be a finite {dim} x {dim} matrix.")
    if not bool(torch.allclose(c, c.T, rtol=1e-10, atol=1e-12)):
        raise BadInputError(f"The {name} covariance must be symmetric.")
    return (c + c.T) / 2


def _vector(mean: torch.Tensor, name: str) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=torch.float64)
    if m.ndim != 1 or not 1 <= len(m) <= MAX_DIM or not bool(m.isfinite().all()):
        raise BadInputError(f"The {name} mean must be a finite vector of 1 to {MAX_DIM} numbers.")
    return m


def psd_sqrt(matrix: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """The symmetric square root M^{1/2} (or M^{-1/2}, `inverse`) of a symmetric positive semidefinite matrix,
    from M = U diag(lam) U^T: U diag(sqrt(lam)) U^T."""
    lam, u = torch.linalg.eigh(matrix.double())
    lam = lam.clamp(min=0)
    if inverse:
        if not bool((lam > 1e-12 * lam.max().clamp(min=1e-300)).all()):
            raise BadInputError("The source covariance must be positive definite for the OT map.")
        root = lam.rsqrt()
    else:
        root = lam.sqrt()
    return (u * root) @ u.T


@dataclass(frozen=True, eq=False)
class Gaussian:
    """N(mean, cov) in D dimensions (float64)."""

    mean: torch.Tensor  # [D]
    cov: torch.Tensor  # [D, D], symmetric positive semidefinite

    @classmethod
    def of(cls, mean: torch.Tensor | list[float], cov: torch.Tensor | list[list[float]]) -> Gaussian:
        m = _vector(torch.as_tensor(mean), "Gaussian's")
        c = _matrix(torch.as_tensor(cov), len(m), "Gaussian's")
        if float(torch.linalg.eigvalsh(c).min()) < -1e-10 * max(1.0, float(c.abs().max())):
            raise BadInputError("A Gaussian's covariance must be positive semidefinite.")
        return cls(m, c)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws [n, D]: mean + S^{1/2} z, z ~ N(0, I)."""
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.mean + z @ psd_sqrt(self.cov)


def w2_squared(a: Gaussian, b: Gaussian) -> float:
    """W2^2 between a = N(m1, S1) and b = N(m2, S2) by the Bures formula above."""
    _same_dim(a, b)
    root_b = psd_sqrt(b.cov)
    cross = psd_sqrt(root_b @ a.cov @ root_b)
    value = (a.mean - b.mean).pow(2).sum() + torch.trace(a.cov + b.cov - 2 * cross)
    return max(float(value), 0.0)


def w2(a: Gaussian, b: Gaussian) -> float:
    """The 2-Wasserstein distance between two Gaussians (the square root of `w2_squared`)."""
    return w2_squared(a, b) ** 0.5


@dataclass(frozen=True, eq=False)
class AffineMap:
    """x -> offset + matrix (x - centre) on points [B, D]."""

    centre: torch.Tensor  # [D]
    matrix: torch.Tensor  # [D, D]
    offset: torch.Tensor  # [D]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.offset + (x.double() - self.centre) @ self.matrix.T


def ot_map(a: Gaussian, b: Gaussian) -> AffineMap:
    """The optimal transport map from a = N(m1, S1) onto b = N(m2, S2) for the squared Euclidean cost:
    T(x) = m2 + A (x - m1), A = S1^{-1/2} (S1^{1/2} S2 S1^{1/2})^{1/2} S1^{-1/2} (symmetric; S1 positive definite)."""
    _same_dim(a, b)
    root_a, inv_root_a = psd_sqrt(a.cov), psd_sqrt(a.cov, inverse=True)
    matrix = inv_root_a @ psd_sqrt(root_a @ b.cov @ root_a) @ inv_root_a
    return AffineMap(a.mean, (matrix + matrix.T) / 2, b.mean)


def _same_dim(a: Gaussian, b: Gaussian) -> None:
    if a.dim != b.dim:
        raise BadInputError("Both Gaussians must have the same dimension.")
