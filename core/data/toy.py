"""Toy point clouds in 2-D and 3-D, each a named generator with shape parameters and a seed.

Every generator is `make(n, generator, **params) -> float64 tensor [n, D]` in the data set's own units
(the page shows them in those units; training standardises them, see core/data/standardize.py).
Mixture data sets also expose their exact law as a `GaussianMixture`, which gives the exact
score and probability-flow fields to compare a trained model with.
Classic shapes follow scikit-learn (swiss roll, moons, circles, S-curve) and FFJORD's toy sets
(Grathwohl et al. 2019: 8 Gaussians, checkerboard, two spirals, pinwheel).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.diffusion.mixture import GaussianMixture
from core.errors import BadInputError
from core.limits import max_points
from core.numbers import parse_number

MIN_POINTS = 16
MAX_COMPONENTS = 32
PI = math.pi


@dataclass(frozen=True, kw_only=True)
class Param:
    """A shape parameter the UI can offer: a number in [low, high], or a table of rows (`columns`)."""

    name: str
    title: str
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    integer: bool = False
    columns: tuple[str, ...] = ()  # non-empty: a table parameter, one row per mixture component


@dataclass(frozen=True, eq=False, kw_only=True)
class PointCloud:
    """A data set ready for the page: points in original units and, where known, its law."""

    points: torch.Tensor  # [N, D] original units: float32, or float64 where the values need it (a CSV's)
    key: str  # identifies what made it (a model remembers the key of the data it learnt)
    title: str
    fresh: Callable[[int, torch.Generator], torch.Tensor] | None = None  # more draws from the same law
    mixture: GaussianMixture | None = None  # the exact law, for Gaussian mixtures

    @property
    def dim(self) -> int:
        return self.points.shape[1]


@dataclass(frozen=True, kw_only=True)
class ToySet:
    name: str
    title: str
    dim: int
    make: Callable[..., torch.Tensor]
    params: tuple[Param, ...] = ()
    mixture: Callable[..., GaussianMixture] | None = None

    def resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in and every value checked; unknown names are an error."""
        params = dict(params or {})
        unknown = set(params) - {p.name for p in self.params}
        if unknown:
            raise BadInputError(f"{self.title} has no parameter {', '.join(sorted(unknown))}.")
        out = {}
        for p in self.params:
            value = params.get(p.name, p.default)
            if p.columns:
                out[p.name] = _check_table(p, value, self.dim)
            else:
                out[p.name] = parse_number(value, p.title, p.low, p.high, integer=p.integer)
        return out

    def cloud(self, n: int, seed: int = 0, params: dict[str, Any] | None = None) -> PointCloud:
        """n points drawn with a generator seeded by `seed`, plus a sampler of fresh points."""
        most = max_points()
        if not MIN_POINTS <= n <= most:
            raise BadInputError(f"The number of points must be between {MIN_POINTS} and {most:,} (got {n}).")
        values = self.resolve(params)

        def fresh(m: int, generator: torch.Generator) -> torch.Tensor:
            return self.make(m, generator, **values).float()

        points = fresh(n, torch.Generator().manual_seed(seed))
        key = json.dumps([self.name, values, n, seed], sort_keys=True)
        mixture = self.mixture(**values) if self.mixture else None
        return PointCloud(points=points, key=key, title=self.title, fresh=fresh, mixture=mixture)


def _check_table(p: Param, rows: Any, dim: int) -> list[list[float]]:
    try:
        table = torch.as_tensor([[float(c) for c in row] for row in rows], dtype=torch.float64)
    except (TypeError, ValueError):
        raise BadInputError(f"Every cell of {p.title} must be a number.") from None
    if table.ndim != 2 or not 1 <= len(table) <= MAX_COMPONENTS or table.shape[1] != len(p.columns):
        raise BadInputError(f"{p.title} needs 1 to {MAX_COMPONENTS} rows of {', '.join(p.columns)}.")
    if not bool(table.isfinite().all()):
        raise BadInputError(f"{p.title} has an empty or non-finite cell.")
    std, weight = table[:, dim], table[:, dim + 1]
    if bool((std <= 0).any()) or bool((weight < 0).any()) or float(weight.sum()) <= 0:
        raise BadInputError("Every component needs a positive std, and the weights must be >= 0, not all 0.")
    return table.tolist()


def _u(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def _z(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def _rejection(
    n: int, g: torch.Generator, propose: Callable[[int], torch.Tensor], accept: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """n proposals kept with probability accept(proposal) in [0, 1] (uniform on a curved surface)."""
    kept: list[torch.Tensor] = []
    total = 0
    while total < n:
        cand = propose(2 * (n - total) + 16)
        cand = cand[_u(len(cand), g) < accept(cand)]
        kept.append(cand)
        total += len(cand)
    return torch.cat(kept)[:n]


# ---- 2-D -----------------------------------------------------------------------------------------------


def swiss_roll_2d(n: int, g: torch.Generator, turns: float = 1.5, noise: float = 0.5) -> torch.Tensor:
    """t uniform in [1.5 pi, 1.5 pi + 2 pi turns]; (t cos t, t sin t) + noise (scikit-learn's roll)."""
    t = 1.5 * PI + 2 * PI * turns * _u(n, g)
    return torch.stack([t * t.cos(), t * t.sin()], 1) + noise * _z(n, 2, g)


def moons(n: int, g: torch.Generator, noise: float = 0.1) -> torch.Tensor:
    """Two interleaved half circles: (cos t, sin t) and (1 - cos t, 0.5 - sin t), t in [0, pi]."""
    t, upper = PI * _u(n, g), _u(n, g) < 0.5
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    return torch.stack([x, y], 1) + noise * _z(n, 2, g)


def circles(n: int, g: torch.Generator, rings: int = 2, inner: float = 0.5, noise: float = 0.05) -> torch.Tensor:
    """Concentric circles of radii evenly spaced from `inner` to 1, points in proportion to length."""
    radii = torch.linspace(inner, 1.0, rings, dtype=torch.float64) if rings > 1 else torch.ones(1, dtype=torch.float64)
    r = radii[torch.multinomial(radii, n, replacement=True, generator=g)]
    a = 2 * PI * _u(n, g)
    return torch.stack([r * a.cos(), r * a.sin()], 1) + noise * _z(n, 2, g)


def ring_mixture(modes: int = 8, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    a = 2 * PI * torch.arange(modes, dtype=torch.float64) / modes
    return GaussianMixture(radius * torch.stack([a.cos(), a.sin()], 1), torch.full((modes,), std))


def table_mixture(components: Sequence[Sequence[float]]) -> GaussianMixture:
    """Rows (mean..., std, weight) -> mixture."""
    t = torch.as_tensor(components, dtype=torch.float64)
    return GaussianMixture(t[:, :-2], t[:, -2], t[:, -1])


def _from_mixture(factory: Callable[..., GaussianMixture]) -> Callable[..., torch.Tensor]:
    def make(n: int, g: torch.Generator, **params: Any) -> torch.Tensor:
        return factory(**params).sample(n, g)[0]

    return make


def checkerboard(n: int, g: torch.Generator, squares: int = 4, size: float = 4.0) -> torch.Tensor:
    """Uniform on the dark squares ((i + j) even) of a squares x squares board of side `size`."""
    cells = torch.tensor([(i, j) for i in range(squares) for j in range(squares) if (i + j) % 2 == 0])
    pick = cells[torch.randint(len(cells), (n,), generator=g)].double()
    return (pick + torch.rand(n, 2, generator=g, dtype=torch.float64)) * (size / squares) - size / 2


def two_spirals(n: int, g: torch.Generator, turns: float = 1.5, noise: float = 0.1) -> torch.Tensor:
    """FFJORD's "2spirals": angle a = sqrt(u) 2 pi turns, point (-a cos a, a sin a) / 3 and its mirror."""
    a = _u(n, g).sqrt() * 2 * PI * turns
    p = torch.stack([-a * a.cos(), a * a.sin()], 1) / 3
    sign = torch.where(_u(n, g) < 0.5, 1.0, -1.0).double()[:, None]
    return sign * p + noise * _z(n, 2, g)


def pinwheel(
    n: int, g: torch.Generator, arms: int = 5, radial_std: float = 0.3, tangential_std: float = 0.1, rate: float = 0.25
) -> torch.Tensor:
    """FFJORD's pinwheel: Gaussian blobs at radius ~1, each rotated by rate * exp(radius) into an arm."""
    f = _z(n, 2, g) * torch.tensor([radial_std, tangential_std], dtype=torch.float64)
    f[:, 0] += 1
    arm = torch.randint(arms, (n,), generator=g).double()
    angle = 2 * PI * arm / arms + rate * f[:, 0].exp()
    c, s = angle.cos(), angle.sin()
    return 2 * torch.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], 1)


def polygon(n: int, g: torch.Generator, sides: int = 5, radius: float = 2.0, noise: float = 0.05) -> torch.Tensor:
    """Uniform on the edges of a regular polygon (a vertex on top), plus noise."""
    a = 2 * PI * torch.arange(sides + 1, dtype=torch.float64) / sides + PI / 2
    corners = radius * torch.stack([a.cos(), a.sin()], 1)
    edge, w = torch.randint(sides, (n,), generator=g), _u(n, g)[:, None]
    return (1 - w) * corners[edge] + w * corners[edge + 1] + noise * _z(n, 2, g)


# ---- 3-D -----------------------------------------------------------------------------------------------


def swiss_roll_3d(
    n: int, g: torch.Generator, turns: float = 1.5, height: float = 20.0, noise: float = 0.3
) -> torch.Tensor:
    """scikit-learn's swiss roll: the 2-D roll in (x, z), extruded along y."""
    t = 1.5 * PI + 2 * PI * turns * _u(n, g)
    y = height * (_u(n, g) - 0.5)
    return torch.stack([t * t.cos(), y, t * t.sin()], 1) + noise * _z(n, 3, g)


def torus(n: int, g: torch.Generator, major: float = 2.0, minor: float = 0.7, noise: float = 0.03) -> torch.Tensor:
    """Uniform on the torus surface: angles kept with probability (R + r cos v) / (R + r), the area element."""
    if minor >= major:
        raise BadInputError("The tube radius must be smaller than the ring radius.")
    uv = _rejection(
        n,
        g,
        lambda m: 2 * PI * torch.rand(m, 2, generator=g, dtype=torch.float64),
        lambda c: (major + minor * c[:, 1].cos()) / (major + minor),
    )
    u, v = uv[:, 0], uv[:, 1]
    ring = major + minor * v.cos()
    return torch.stack([ring * u.cos(), ring * u.sin(), minor * v.sin()], 1) + noise * _z(n, 3, g)


def helix(
    n: int, g: torch.Generator, radius: float = 1.0, turns: float = 3.0, height: float = 4.0, noise: float = 0.05
) -> torch.Tensor:
    u = _u(n, g)
    a = 2 * PI * turns * u
    return torch.stack([radius * a.cos(), radius * a.sin(), height * (u - 0.5)], 1) + noise * _z(n, 3, g)


def mobius(n: int, g: torch.Generator, radius: float = 2.0, width: float = 1.0, noise: float = 0.02) -> torch.Tensor:
    """Uniform on a Mobius strip of half-width `width`: rejection by the area element
    |dp/du x dp/dv| = sqrt(v^2 / 4 + (R + v cos(u/2))^2)."""
    if width >= radius:
        raise BadInputError("The strip's half-width must be smaller than its radius.")

    def propose(m: int) -> torch.Tensor:
        r = torch.rand(m, 2, generator=g, dtype=torch.float64)
        return torch.stack([2 * PI * r[:, 0], width * (2 * r[:, 1] - 1)], 1)

    def area(c: torch.Tensor) -> torch.Tensor:
        return (c[:, 1] ** 2 / 4 + (radius + c[:, 1] * (c[:, 0] / 2).cos()) ** 2).sqrt()

    uv = _rejection(n, g, propose, lambda c: area(c) / math.sqrt(width**2 / 4 + (radius + width) ** 2))
    u, v = uv[:, 0], uv[:, 1]
    ring = radius + v * (u / 2).cos()
    return torch.stack([ring * u.cos(), ring * u.sin(), v * (u / 2).sin()], 1) + noise * _z(n, 3, g)


def s_curve(n: int, g: torch.Generator, height: float = 2.0, noise: float = 0.05) -> torch.Tensor:
    """scikit-learn's S-curve: t in [-1.5 pi, 1.5 pi], (sin t, y, sign(t) (cos t - 1))."""
    t = 3 * PI * (_u(n, g) - 0.5)
    y = height * _u(n, g)
    return torch.stack([t.sin(), y, t.sign() * (t.cos() - 1)], 1) + noise * _z(n, 3, g)


def sphere(n: int, g: torch.Generator, radius: float = 2.0, noise: float = 0.05) -> torch.Tensor:
    """Uniform on a sphere (normalised Gaussian directions), plus noise: a shell."""
    d = _z(n, 3, g)
    return radius * d / d.norm(dim=1, keepdim=True) + noise * _z(n, 3, g)


# ---- registry ------------------------------------------------------------------------------------------


def _noise(default: float, high: float = 2.0) -> Param:
    return Param(
        name="noise",
        title="Noise (std)",
        default=default,
        low=0.0,
        high=high,
        help="Gaussian noise added to every point.",
    )


def _turns(default: float, high: float = 4.0) -> Param:
    return Param(
        name="turns", title="Turns", default=default, low=0.25, high=high, help="How many times the curve winds round."
    )


_MIX_2D = ((-2.0, 0.0, 0.5, 1.0), (2.0, 1.0, 0.7, 1.0), (0.0, -2.0, 0.3, 0.5))
_MIX_3D = ((-2.0, 0.0, 0.0, 0.5, 1.0), (2.0, 1.0, 0.0, 0.6, 1.0), (0.0, -1.0, 2.0, 0.4, 0.5))
_COMP_HELP = "One row per component: its mean, its (isotropic) std and its weight."

TOY_SETS: dict[str, ToySet] = {
    s.name: s
    for s in (
        ToySet(
            name="swiss_roll", title="Swiss roll", dim=2, make=swiss_roll_2d, params=(_turns(1.5), _noise(0.5, 3.0))
        ),
        ToySet(name="moons", title="Two moons", dim=2, make=moons, params=(_noise(0.1, 0.5),)),
        ToySet(
            name="circles",
            title="Concentric circles",
            dim=2,
            make=circles,
            params=(
                Param(name="rings", title="Rings", default=2, low=1, high=6, help="How many circles.", integer=True),
                Param(
                    name="inner",
                    title="Inner radius",
                    default=0.5,
                    low=0.05,
                    high=0.95,
                    help="Radius of the smallest ring (the largest is 1).",
                ),
                _noise(0.05, 0.5),
            ),
        ),
        ToySet(
            name="eight_gaussians",
            title="8 Gaussians",
            dim=2,
            make=_from_mixture(ring_mixture),
            params=(
                Param(
                    name="modes",
                    title="Modes",
                    default=8,
                    low=2,
                    high=16,
                    help="How many Gaussians on the ring.",
                    integer=True,
                ),
                Param(name="radius", title="Ring radius", default=2.0, low=0.5, high=10.0),
                Param(name="std", title="Std of each", default=0.2, low=0.01, high=2.0),
            ),
            mixture=ring_mixture,
        ),
        ToySet(
            name="checkerboard",
            title="Checkerboard",
            dim=2,
            make=checkerboard,
            params=(
                Param(name="squares", title="Squares per side", default=4, low=2, high=10, integer=True),
                Param(name="size", title="Board size", default=4.0, low=0.5, high=20.0),
            ),
        ),
        ToySet(
            name="two_spirals", title="Two spirals", dim=2, make=two_spirals, params=(_turns(1.5), _noise(0.1, 1.0))
        ),
        ToySet(
            name="pinwheel",
            title="Pinwheel",
            dim=2,
            make=pinwheel,
            params=(
                Param(name="arms", title="Arms", default=5, low=1, high=12, integer=True),
                Param(name="radial_std", title="Radial std", default=0.3, low=0.01, high=1.0),
                Param(name="tangential_std", title="Tangential std", default=0.1, low=0.01, high=1.0),
                Param(name="rate", title="Twist", default=0.25, low=0.0, high=1.0, help="How strongly the arms curl."),
            ),
        ),
        ToySet(
            name="polygon",
            title="Regular polygon",
            dim=2,
            make=polygon,
            params=(
                Param(name="sides", title="Sides", default=5, low=3, high=12, integer=True),
                Param(name="radius", title="Radius", default=2.0, low=0.1, high=10.0),
                _noise(0.05),
            ),
        ),
        ToySet(
            name="mixture_2d",
            title="Gaussian mixture (2-D)",
            dim=2,
            make=_from_mixture(table_mixture),
            params=(
                Param(
                    name="components",
                    title="Components",
                    default=_MIX_2D,
                    help=_COMP_HELP,
                    columns=("x", "y", "std", "weight"),
                ),
            ),
            mixture=table_mixture,
        ),
        ToySet(
            name="swiss_roll_3d",
            title="Swiss roll (3-D)",
            dim=3,
            make=swiss_roll_3d,
            params=(
                _turns(1.5),
                Param(name="height", title="Height", default=20.0, low=0.5, high=50.0),
                _noise(0.3, 3.0),
            ),
        ),
        ToySet(
            name="torus",
            title="Torus",
            dim=3,
            make=torus,
            params=(
                Param(name="major", title="Ring radius", default=2.0, low=0.2, high=10.0),
                Param(name="minor", title="Tube radius", default=0.7, low=0.05, high=5.0),
                _noise(0.03, 0.5),
            ),
        ),
        ToySet(
            name="helix",
            title="Helix",
            dim=3,
            make=helix,
            params=(
                Param(name="radius", title="Radius", default=1.0, low=0.1, high=10.0),
                _turns(3.0, 10.0),
                Param(name="height", title="Height", default=4.0, low=0.1, high=20.0),
                _noise(0.05, 0.5),
            ),
        ),
        ToySet(
            name="mobius",
            title="Mobius strip",
            dim=3,
            make=mobius,
            params=(
                Param(name="radius", title="Radius", default=2.0, low=0.2, high=10.0),
                Param(name="width", title="Half-width", default=1.0, low=0.05, high=5.0),
                _noise(0.02, 0.5),
            ),
        ),
        ToySet(
            name="s_curve",
            title="S-curve",
            dim=3,
            make=s_curve,
            params=(Param(name="height", title="Height", default=2.0, low=0.1, high=10.0), _noise(0.05, 0.5)),
        ),
        ToySet(
            name="sphere",
            title="Sphere shell",
            dim=3,
            make=sphere,
            params=(Param(name="radius", title="Radius", default=2.0, low=0.1, high=10.0), _noise(0.05, 1.0)),
        ),
        ToySet(
            name="mixture_3d",
            title="Gaussian mixture (3-D)",
            dim=3,
            make=_from_mixture(table_mixture),
            params=(
                Param(
                    name="components",
                    title="Components",
                    default=_MIX_3D,
                    help=_COMP_HELP,
                    columns=("x", "y", "z", "std", "weight"),
                ),
            ),
            mixture=table_mixture,
        ),
    )
}


def get_toy_set(name: str) -> ToySet:
    spec = TOY_SETS.get(name)
    if spec is None:
        raise BadInputError(f"Unknown data set {name!r}; choose one of {', '.join(TOY_SETS)}.")
    return spec
