"""The Inversion page's logic: data run up the probability-flow ODE to its noise and back down
(core/diffusion/inversion.py), for a 2-D point cloud with the exact mixture denoiser, for the latent MNIST
plane, and for pixel MNIST digits; and what the inverted noise is good for.

- `invert_paths`: one round trip with every step's position kept (VP coordinates), so the paths can be drawn.
- `error_vs_steps`, `error_vs_scale`: the round-trip error (RMS over a sample's entries, in the data's units;
  mean over the samples with its standard error) as the steps or the guidance scale grow.
- `noise_moments`: how Gaussian an inverted noise looks: moments, neighbour correlation and the
  Kolmogorov-Smirnov distance to N(0, 1) of eps = x(sigma_max) / sigma_max.
- `slerp`: spherical interpolation between two noises, which keeps the norm that Gaussian noise in many
  dimensions concentrates on (a straight line between two noises passes through too-short vectors).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.diffusion.denoisers import Denoiser, with_labels
from core.diffusion.inversion import invert, regenerate
from core.diffusion.samplers import SAMPLERS
from core.diffusion.trajectory import vp_state
from core.errors import BadInputError
from core.labs.samplers import ImageModel

MAX_POINTS = 1000  # points of a cloud inverted at once (their paths are drawn)
MAX_STEPS = 200
MAX_IMAGES = 16  # digits in one measurement
STEP_LADDER = (5, 10, 20, 50, 100)  # images and latents
TOY_LADDER = (2, 4, 8, 16, 32, 64, 128)  # the exact mixture: cheap, and long enough to show each order
MAX_FRAMES = 16  # interpolation frames


@dataclass(frozen=True, kw_only=True, eq=False)
class Inverted:
    """One round trip: data -> noise (`up`) -> data again (`down`), each path in VP coordinates
    y = x / sqrt(1 + sigma^2), so that noise at sigma_max and data share one scale."""

    data: torch.Tensor  # [n, ...]
    noise: torch.Tensor  # [n, ...] the state at sigma_max (VE units)
    sample: torch.Tensor  # [n, ...] regenerated from it on the same grid
    sigma_max: float
    up: torch.Tensor  # [F, n, ...] from the data (at sigma_min) to the noise
    down: torch.Tensor  # [F + 1, n, ...] from the noise to the state at sigma_min, then the sample
    ode_error: torch.Tensor  # [n] RMS error at sigma_min (the two ODE solves only)
    error: torch.Tensor  # [n] RMS error of the sample (with sampling's last step to 0)
    seconds: float

    @property
    def eps(self) -> torch.Tensor:
        """The inverted noise in units of sigma_max: N(0, I) if inversion hit the prior exactly."""
        return self.noise / self.sigma_max


def _rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).double().pow(2).mean(1).sqrt()


def _check(name: str, steps: int, n: int, most: int) -> None:
    """The page's limits (core/diffusion/inversion.py refuses a sampler without an inverse)."""
    if not 2 <= steps <= MAX_STEPS or not 1 <= n <= most:
        raise BadInputError(f"Invert 1 to {most:,} samples in 2 to {MAX_STEPS} steps.")


def invert_paths(name: str, denoiser: Denoiser, x0: torch.Tensor, sigmas: torch.Tensor) -> Inverted:
    """Invert x0 with sampler `name` on the grid `sigmas` (decreasing to 0) and sample back, keeping the paths."""
    _check(name, len(sigmas) - 1, len(x0), MAX_POINTS)
    up: list[torch.Tensor] = []
    down: list[torch.Tensor] = []
    tic = time.perf_counter()
    noise = invert(name, denoiser, x0, sigmas, callback=lambda s: up.append(vp_state(s.x, s.sigma)))
    at_min, out = regenerate(name, denoiser, noise, sigmas, callback=lambda s: down.append(vp_state(s.x, s.sigma)))
    s_max, s_min = float(sigmas[0]), float(sigmas[-2])
    up.append(vp_state(noise, s_max))  # the sampler reports each step's start; the ends are added here
    down += [vp_state(at_min, s_min), out]
    return Inverted(
        data=x0,
        noise=noise,
        sample=out,
        sigma_max=s_max,
        up=torch.stack(up),
        down=torch.stack(down),
        ode_error=_rms(at_min, x0),
        error=_rms(out, x0),
        seconds=time.perf_counter() - tic,
    )


@dataclass(frozen=True, kw_only=True)
class ErrorRow:
    sampler: str
    steps: int
    nfe: int  # denoiser evaluations of sampling (the round trip costs about twice this)
    scale: float  # the guidance scale both ways (1: the conditional model; nan: a model without classes)
    ode_error: float
    ode_se: float
    error: float
    error_se: float
    seconds: float


def _row(name: str, scale: float, x0: torch.Tensor, denoiser: Denoiser, sigmas: torch.Tensor) -> ErrorRow:
    steps, tic = len(sigmas) - 1, time.perf_counter()
    noise = invert(name, denoiser, x0, sigmas)
    at_min, out = regenerate(name, denoiser, noise, sigmas)
    ode, full = _rms(at_min, x0), _rms(out, x0)

    def se(e: torch.Tensor) -> float:
        return float(e.std() / math.sqrt(len(e))) if len(e) > 1 else float("nan")

    return ErrorRow(
        sampler=name,
        steps=steps,
        nfe=SAMPLERS[name].nfe(steps),
        scale=scale,
        ode_error=float(ode.mean()),
        ode_se=se(ode),
        error=float(full.mean()),
        error_se=se(full),
        seconds=time.perf_counter() - tic,
    )


def error_vs_steps(
    denoiser: Denoiser,
    x0: torch.Tensor,
    grid: Callable[[int], torch.Tensor],
    samplers: Sequence[str],
    ladder: Sequence[int],
    scale: float = float("nan"),
) -> Iterator[ErrorRow]:
    """One row per sampler and step count (`grid(steps)` gives the sigmas; a grid may hold fewer steps than
    asked, and the row says how many); a caller may stop between rows."""
    for name in samplers:
        for steps in ladder:
            _check(name, steps, len(x0), MAX_POINTS)
            yield _row(name, scale, x0, denoiser, grid(steps))


def error_vs_scale(
    denoiser_at: Callable[[float], Denoiser],
    x0: torch.Tensor,
    sigmas: torch.Tensor,
    sampler: str,
    scales: Sequence[float],
) -> Iterator[ErrorRow]:
    """One row per guidance scale: inverted and regenerated with the same guided denoiser `denoiser_at(w)`."""
    for w in scales:
        _check(sampler, len(sigmas) - 1, len(x0), MAX_POINTS)
        yield _row(sampler, float(w), x0, denoiser_at(float(w)), sigmas)


def image_denoiser(model: ImageModel, labels: torch.Tensor | None, scale: float = 1.0, batch: int = 1) -> Denoiser:
    """A pixel model's denoiser for a batch whose sample k asks for labels[k] under guidance `scale`; labels
    None: a batch of `batch` unconditional samples (a class-conditional model's "no class" label). Not clipped:
    the ODE must be smooth for its inverse to undo it."""
    assert model.denoiser is not None
    if not model.num_classes:
        return model.denoiser
    if labels is None:
        if model.null_label is None:
            raise BadInputError("This model has no unconditional label: pick a class.")
        return with_labels(model.denoiser, torch.full((batch,), model.null_label))
    return with_labels(model.denoiser, labels, scale, model.null_label)


def noise_moments(values: torch.Tensor | np.ndarray) -> dict[str, float]:
    """How N(0, 1)-like a set of numbers is: mean, std, skew(ness), excess kurtosis (0 for a Gaussian), and the
    Kolmogorov-Smirnov distance to N(0, 1) with its p-value."""
    from scipy import stats  # scipy costs ~60 MB: imported only when the noise is measured

    v = np.asarray(values, dtype=np.float64).ravel()
    ks = stats.kstest(v, "norm")
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)),
        "skew": float(stats.skew(v)),
        "excess kurtosis": float(stats.kurtosis(v)),
        "KS distance": float(ks.statistic),
        "KS p-value": float(ks.pvalue),
    }


def neighbour_correlation(eps: torch.Tensor) -> float:
    """Correlation of horizontally and vertically adjacent entries of one image [C, H, W] (0 for white noise)."""
    a = torch.cat([eps[..., :, :-1].flatten(), eps[..., :-1, :].flatten()]).double()
    b = torch.cat([eps[..., :, 1:].flatten(), eps[..., 1:, :].flatten()]).double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def image_noise_rows(eps: torch.Tensor, names: Sequence[str]) -> list[dict[str, float | str]]:
    """Per-image statistics of inverted noises eps [n, C, H, W] (in units of sigma_max)."""
    return [
        {"image": name, **noise_moments(e), "neighbour corr.": neighbour_correlation(e)}
        for name, e in zip(names, eps, strict=True)
    ]


def slerp(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """`frames` points from a to b (both included) along the great circle, the norm interpolated linearly:
    [frames, *a.shape]."""
    if not 2 <= frames <= MAX_FRAMES or a.shape != b.shape:
        raise BadInputError(f"Interpolate two noises of one shape in 2 to {MAX_FRAMES} frames.")
    t = torch.linspace(0, 1, frames, dtype=torch.float64)
    fa, fb = a.flatten().double(), b.flatten().double()
    na, nb = fa.norm(), fb.norm()
    cos = float((fa @ fb) / (na * nb)) if na > 0 and nb > 0 else 1.0
    omega = math.acos(max(-1.0, min(1.0, cos)))
    if omega < 1e-6:  # parallel: the great circle is the line
        out = (1 - t)[:, None] * fa + t[:, None] * fb
    else:
        ua, ub = fa / na, fb / nb
        direction = (torch.sin((1 - t) * omega)[:, None] * ua + torch.sin(t * omega)[:, None] * ub) / math.sin(omega)
        out = direction * ((1 - t) * na + t * nb)[:, None]
    return out.to(a.dtype).reshape(frames, *a.shape)


@dataclass(frozen=True, kw_only=True, eq=False)
class Interpolation:
    spherical: torch.Tensor  # [frames, ...] sampled back from the slerp of the two noises
    straight: torch.Tensor  # [frames, ...] and from the straight line between them
    mid_norms: tuple[float, float]  # the mid-way noise's norm over the ends' mean: spherical, straight


def interpolate(
    name: str, denoiser_for: Callable[[int], Denoiser], pair: torch.Tensor, sigmas: torch.Tensor, frames: int
) -> Interpolation:
    """The two items of `pair` [2, ...] inverted, their noises joined by `slerp` and by a straight line, and
    every frame sampled back (`denoiser_for(batch)`: the denoiser for a batch of that size)."""
    noise = invert(name, denoiser_for(2), pair, sigmas)
    spherical = slerp(noise[0], noise[1], frames)
    t = torch.linspace(0, 1, frames, dtype=noise.dtype).reshape(-1, *(1,) * (noise.ndim - 1))
    straight = (1 - t) * noise[0] + t * noise[1]
    out = regenerate(name, denoiser_for(2 * frames), torch.cat([spherical, straight]), sigmas)[1]
    ends = float(noise.flatten(1).norm(dim=1).mean())
    mid = frames // 2
    norms = (float(spherical[mid].norm()) / ends, float(straight[mid].norm()) / ends)
    return Interpolation(spherical=out[:frames], straight=out[frames:], mid_norms=norms)


def round_trip_evaluations(samplers: Sequence[str], ladder: Sequence[int], images: int, guided: bool) -> int:
    """Image evaluations of the denoiser that `error_vs_steps` (or, with one step count, `error_vs_scale` per
    scale) costs: each round trip runs the sampler up its grid and down again (about twice its NFE)."""
    per_image = sum(2 * SAMPLERS[name].nfe(steps) for name in samplers for steps in ladder)
    return per_image * images * (2 if guided else 1)


@dataclass(frozen=True, kw_only=True)
class MeasurePlan:
    """The round trips of an error measurement on `images` digits, in the order they run: every sampler (in the
    order chosen) at every step count (ascending), the step rows; then, with a sweep, one sampler and step count
    at every guidance scale, the scale rows. `guided`: each digit's class is bound in (guidance at w = 1 for the
    step rows, both halves run); a sweep needs it, since a scale means nothing without a class."""

    samplers: tuple[str, ...]
    ladder: tuple[int, ...]
    images: int
    guided: bool
    sweep: tuple[str, int] | None = None  # (sampler, steps) of the guidance-scale rows
    scales: tuple[float, ...] = ()

    @property
    def step_rows(self) -> int:
        return len(self.samplers) * len(self.ladder)

    @property
    def total(self) -> int:
        """Every round trip planned: the step rows, then the scale rows."""
        return self.step_rows + (len(self.scales) if self.sweep is not None else 0)

    def evaluations(self) -> int:
        """Image evaluations of the denoiser the whole plan costs (the input of its time estimate)."""
        found = round_trip_evaluations(self.samplers, self.ladder, self.images, self.guided)
        if self.sweep is not None:
            sampler, steps = self.sweep
            found += round_trip_evaluations([sampler], [steps], self.images, True) * len(self.scales)
        return found

    def split(self, rows: Sequence[ErrorRow]) -> tuple[list[ErrorRow], list[ErrorRow]]:
        """Rows measured so far (all or the first ones, after a Stop) as (step rows, scale rows)."""
        return list(rows[: self.step_rows]), list(rows[self.step_rows :])


def measure_plan(
    samplers: Sequence[str],
    ladder: Sequence[int],
    images: int,
    guided: bool,
    sweep: tuple[str, int] | None = None,
    scales: Sequence[float] = (),
) -> MeasurePlan:
    """The plan for these choices (the step counts run ascending); refused without a sampler or a step count, and
    for a sweep without a class bound in."""
    if not samplers or not ladder or not 1 <= images <= MAX_IMAGES:
        raise BadInputError(f"Measure at least one sampler and one step count on 1 to {MAX_IMAGES} digits.")
    if sweep is not None and (not guided or not scales):
        raise BadInputError("A guidance-scale sweep needs a class bound in and at least one scale.")
    return MeasurePlan(
        samplers=tuple(samplers),
        ladder=tuple(sorted(ladder)),
        images=int(images),
        guided=guided,
        sweep=sweep,
        scales=tuple(float(w) for w in scales) if sweep else (),
    )


def measure(
    plan: MeasurePlan,
    denoiser_at: Callable[[float], Denoiser],
    x0: torch.Tensor,
    grid: Callable[[int], torch.Tensor],
) -> Iterator[ErrorRow]:
    """The plan's rows in its order, each as it finishes (a caller may stop between rows): `denoiser_at(w)` is
    the denoiser under guidance scale w (the step rows use w = 1), `grid(steps)` the sigmas for a step count."""
    yield from error_vs_steps(
        denoiser_at(1.0), x0, grid, plan.samplers, plan.ladder, 1.0 if plan.guided else float("nan")
    )
    if plan.sweep is not None:
        sampler, steps = plan.sweep
        yield from error_vs_scale(denoiser_at, x0, grid(steps), sampler, plan.scales)
