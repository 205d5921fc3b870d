"""Guidance: a class-conditional denoiser pushed towards its class. Every method is one wrapper of the one
denoiser D(x, sigma, class_labels) -> x_0, so every sampler runs with every method. Each mixes the conditional
prediction D_c with a reference prediction D_r at a scale w; with D_r = D_c (w = 1 for all but CFG++) the
conditional model is left alone.

- **cfg** (Ho & Salimans 2022): D_r + w (D_c - D_r), the reference being the unconditional model (null label).
- **rescale** (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps Are Flawed"): CFG whose noise
  prediction eps = (x - D) / sigma is scaled back towards the conditional one's size, by
  phi rms(eps_c) / rms(eps_cfg) + 1 - phi, as diffusers rescales an epsilon model's prediction (the paper
  rescales its v-prediction). They take the standard deviation over each sample's values; the root mean square
  is the same for zero-mean noise predictions and is also defined for 2-D points.
- **apg** (Sadat et al. 2024, "Eliminating Oversaturation and Artifacts of High Guidance Scales", adaptive
  projected guidance): the update Delta = D_c - D_r, after a momentum average Delta + beta Delta_prev (beta < 0
  in the paper) and a cap r on its norm, is split into its part parallel to D_c and the part orthogonal to it;
  the parallel part (which oversaturates) is weighted by eta: D_c + (w - 1) (orthogonal + eta parallel).
  With eta = 1, no momentum and no cap, this is CFG.
- **cfg++** (Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free Guidance"): a DDIM step whose
  x_0 is guided at lambda in [0, 1], D_r + lambda (D_c - D_r), but whose re-noising direction is the
  unconditional noise: x' = D_lambda + sigma' (x - D_r) / sigma. That equals a deterministic Euler/DDIM step
  from sigma to the next grid level sigma' of CFG at w = lambda / (1 - sigma' / sigma), which is how it runs
  here: under DDIM (eta 0) and Euler exactly CFG++. Any other call (a midpoint, a churned or ancestral step, a
  multistep extrapolation) is guided at the scale of the grid step [sigma_{i+1}, sigma_i] that holds its sigma;
  that is CFG++'s scale, not its update (k-diffusion-style "_cfg_pp" samplers change each update instead).
- **auto** (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself", autoguidance):
  D_g + w (D_c - D_g), the reference D_g being a weaker model's conditional prediction (a smaller or less
  trained network of the same data and classes); with the model itself as its guide, no guidance at all.

Any method can act only for sigma in an interval (lo, hi] (Kynkäänniemi et al. 2024, "Applying Guidance in a
Limited Interval"); elsewhere the conditional model alone runs (one pass of size B).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from core.errors import BadInputError

D = Callable[..., torch.Tensor]  # a denoiser D(x, sigma, **cond) (core/diffusion/denoisers.Denoiser)

METHODS = {
    "cfg": "CFG",
    "rescale": "CFG + rescale",
    "apg": "APG",
    "cfg++": "CFG++",
    "auto": "Autoguidance",
}
UNCONDITIONAL_REFERENCE = ("cfg", "rescale", "apg", "cfg++")  # the methods whose reference is the null label
ROUNDING = 1e-6  # a sigma within this share of a grid level is that level (float32 rounds levels by ~6e-8)


@dataclass(frozen=True, kw_only=True)
class Guidance:
    """A guidance method and its settings (see the module docstring); `scale` is w, or CFG++'s lambda."""

    method: str = "cfg"
    scale: float = 1.0
    interval: tuple[float, float] | None = None  # guide only for lo < sigma <= hi (None: at every sigma)
    rescale: float = 0.7  # rescale's phi: 0 is plain CFG, 1 the full rescaling (the paper uses 0.7)
    eta: float = 0.0  # APG: the weight of the update's part parallel to D_c (1: CFG)
    momentum: float = -0.5  # APG: beta of the running update Delta + beta Delta_prev (0: none)
    threshold: float = 0.0  # APG: the cap r on the update's norm (0: no cap)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise BadInputError(f"Unknown guidance {self.method!r}; choose one of {', '.join(METHODS)}.")
        numbers = (self.scale, self.rescale, self.eta, self.momentum, self.threshold)
        if not all(math.isfinite(v) for v in numbers):
            raise BadInputError("Guidance settings must be finite numbers.")
        if self.method == "cfg++" and not 0 <= self.scale <= 1:
            raise BadInputError("CFG++'s scale lambda runs from 0 (unconditional) to 1.")
        if self.scale < 0:
            raise BadInputError("The guidance scale must be 0 or more.")
        if not 0 <= self.rescale <= 1:
            raise BadInputError("Rescale's phi runs from 0 (plain CFG) to 1 (fully rescaled).")
        if not 0 <= self.eta <= 1:
            raise BadInputError("APG's eta (the parallel part's weight) runs from 0 to 1.")
        if not -1 < self.momentum < 1:
            raise BadInputError("APG's momentum must lie strictly between -1 and 1.")
        if self.threshold < 0:
            raise BadInputError("APG's norm cap must be 0 (none) or more.")
        if self.interval is not None and not 0 <= self.interval[0] < self.interval[1]:
            raise BadInputError("A guidance interval needs 0 <= low < high (in sigma).")

    @property
    def neutral(self) -> bool:
        """Whether it leaves the conditional model alone (w = 1; CFG++ always guides)."""
        return self.method != "cfg++" and self.scale == 1.0

    @property
    def calls(self) -> int:
        """Denoiser evaluations per image per call: the conditional one, and the reference unless neutral."""
        return 1 if self.neutral else 2

    def label(self) -> str:
        """A short name with the settings that matter for the method, e.g. "APG w = 3 (eta 0, beta -0.5)"."""
        name = METHODS[self.method]
        text = f"{name} λ = {self.scale:g}" if self.method == "cfg++" else f"{name} w = {self.scale:g}"
        if self.method == "rescale":
            text += f" (phi {self.rescale:g})"
        elif self.method == "apg":
            cap = f", r {self.threshold:g}" if self.threshold else ""
            text += f" (eta {self.eta:g}, beta {self.momentum:g}{cap})"
        if self.interval is not None:
            text += f", sigma in ({self.interval[0]:g}, {self.interval[1]:g}]"
        return text


def _rms(v: torch.Tensor) -> torch.Tensor:
    """Each sample's root mean square over its values, shaped to broadcast against v."""
    return v.pow(2).mean(dim=tuple(range(1, v.ndim)), keepdim=True).sqrt()


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(like.dtype).reshape(-1, *(1,) * (like.ndim - 1))


class Guided:
    """`denoiser` guided as `guidance` says: D(x, sigma, class_labels). The unconditional reference runs with
    the conditional one as one batched forward of size 2B; autoguidance's `guide` (a denoiser of the same
    classes) runs beside it. CFG++ needs the sampling grid `sigmas` (its steps' sizes). APG keeps its running
    update between the calls of one run: a Guided is made per run (as `with_labels` makes it), and starts its
    update afresh where the batch changes or a call comes at the grid's top level again."""

    def __init__(
        self,
        denoiser: D,
        guidance: Guidance,
        null_label: int | None = None,
        guide: D | None = None,
        sigmas: torch.Tensor | None = None,
    ) -> None:
        if guidance.method in UNCONDITIONAL_REFERENCE and null_label is None:
            raise BadInputError("Guidance needs a model with an unconditional (no class) label.")
        if guidance.method == "auto" and guide is None:
            raise BadInputError("Autoguidance needs a guide: a weaker model of the same data and classes.")
        if guidance.method == "cfg++" and sigmas is None:
            raise BadInputError("CFG++ needs the sampling grid: its scale depends on each step's size.")
        self.denoiser, self.guidance, self.guide = denoiser, guidance, guide
        self.null_label = null_label
        # the grid from sigma_max down to its last positive level, then 0
        self.grid = (
            None if sigmas is None else torch.sort(sigmas.detach().double().cpu().unique(), descending=True).values
        )
        self._running: torch.Tensor | None = None  # APG's running update

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        g = self.guidance
        active = torch.ones_like(sigma, dtype=torch.bool)
        if g.interval is not None:
            active = (sigma > g.interval[0]) & (sigma <= g.interval[1])
        if g.neutral or not bool(active.any()):
            return self.denoiser(x, sigma, class_labels=class_labels)
        cond, ref = self._pair(x, sigma, class_labels)
        guided = self._combine(x, sigma, cond, ref)
        return torch.where(_per_sample(active, cond).bool(), guided, cond)

    def _pair(self, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional prediction and the reference one (unconditional, or the guide's)."""
        if self.guidance.method == "auto":
            assert self.guide is not None
            return self.denoiser(x, sigma, class_labels=labels), self.guide(x, sigma, class_labels=labels)
        null = torch.full_like(labels, self.null_label)
        both = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), class_labels=torch.cat([labels, null]))
        cond, ref = both.chunk(2)
        return cond, ref

    def _combine(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        g = self.guidance
        if g.method in ("cfg", "auto"):
            return ref + g.scale * (cond - ref)
        if g.method == "cfg++":
            return ref + _per_sample(self.step_scale(sigma), cond) * (cond - ref)
        if g.method == "rescale":
            return self._rescaled(x, sigma, cond, ref)
        return self._projected(sigma, cond, ref)

    def step_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """CFG++'s scale per sample: lambda / (1 - sigma_{i+1} / sigma_i) of the grid step i that holds sigma
        (a level sigma_i, to float32's rounding, or any sigma in [sigma_{i+1}, sigma_i); above the grid its first
        step, below its last positive level its last, where the scale is lambda itself)."""
        assert self.grid is not None
        levels = self.grid[:-1] if float(self.grid[-1]) == 0.0 else self.grid  # the steps' starts, descending
        nxt = torch.cat([levels[1:], levels.new_zeros(1)])
        s = sigma.detach().double().cpu()
        at_or_above = (levels[None, :] >= s[:, None] * (1 - ROUNDING)).sum(1)  # levels at or above sigma
        i = (at_or_above - 1).clamp(0, len(levels) - 1)
        w = self.guidance.scale / (1 - nxt[i] / levels[i])
        return w.to(sigma.device, sigma.dtype if sigma.is_floating_point() else torch.float32)

    def _rescaled(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        g = self.guidance
        s = _per_sample(sigma, x)
        eps_c, eps_r = (x - cond) / s, (x - ref) / s
        eps = eps_r + g.scale * (eps_c - eps_r)
        factor = g.rescale * _rms(eps_c) / _rms(eps).clamp(min=1e-12) + (1 - g.rescale)
        return x - s * eps * factor

    def _projected(self, sigma: torch.Tensor, cond: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        g = self.guidance
        update = cond - ref
        at_top = self.grid is not None and float(sigma.max()) >= float(self.grid[0]) * (1 - ROUNDING)
        if self._running is not None and (self._running.shape != update.shape or at_top):
            self._running = None  # a new run
        if g.momentum:
            update = update if self._running is None else update + g.momentum * self._running
            self._running = update
        if g.threshold > 0:
            norm = _rms(update) * math.sqrt(update[0].numel())
            update = update * (g.threshold / norm.clamp(min=1e-12)).clamp(max=1.0)
        unit = cond / (_rms(cond) * math.sqrt(cond[0].numel())).clamp(min=1e-12)
        parallel = (update * unit).sum(dim=tuple(range(1, cond.ndim)), keepdim=True) * unit
        return cond + (g.scale - 1) * (update - parallel + g.eta * parallel)


def guided(
    denoiser: D,
    guidance: Guidance,
    null_label: int | None = None,
    guide: D | None = None,
    sigmas: torch.Tensor | None = None,
) -> D:
    """`denoiser` under `guidance` (itself where the guidance is neutral), still taking class_labels."""
    if guidance.neutral:
        return denoiser
    return Guided(denoiser, guidance, null_label, guide, sigmas)


def as_guidance(guidance: float | Guidance, interval: tuple[float, float] | None = None) -> Guidance:
    """A scale alone is classifier-free guidance at that scale; `interval`, if given, limits either."""
    if isinstance(guidance, Guidance):
        return guidance if interval is None else replace(guidance, interval=interval)
    return Guidance(scale=float(guidance), interval=interval)
