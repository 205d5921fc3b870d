"""The engine's one interface: a denoiser D(x, sigma, **cond) -> estimate of x_0.

x is in variance-exploding coordinates, x = x_0 + sigma * eps, with sigma of shape [B]. Every sampler
calls only this, so any model (epsilon, x_0 or v prediction, discrete or continuous time) and the exact
Gaussian-mixture denoiser run under every sampler.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from core.diffusion.flow import TIME_SCALE, t_of_sigma
from core.diffusion.schedules import NoiseSchedule
from core.errors import BadInputError

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction", "flow_prediction")  # the last: core/diffusion/flow.py


class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor: ...


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] to multiply a [B, ...] tensor per sample."""
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


class NetworkDenoiser:
    """What the adapters of trained networks share: the network (never modified: it may be shared between
    sessions), where it runs, and one call of it."""

    def __init__(self, model: Callable[..., Any], num_classes: int | None = None) -> None:
        self.model = model
        self.num_classes = num_classes
        params = getattr(model, "parameters", None)
        first = next(iter(params()), None) if params else None
        self.dtype = first.dtype if first is not None else None
        self.device = first.device if first is not None else torch.device("cpu")

    def run(self, x_t: torch.Tensor, time: torch.Tensor, class_labels: torch.Tensor | None) -> torch.Tensor:
        """model(x_t, time[, class_labels]) (a tensor, or an object with `.sample`, as diffusers' UNet2DModel
        returns) in x_t's device and dtype. A network gets its time in float32; a plain function (an exact
        field) in the state's own precision."""
        model_in = x_t if self.dtype is None else x_t.to(self.device, self.dtype)
        time = time if self.dtype is None else time.to(self.device, torch.float32)
        extra = {} if class_labels is None else {"class_labels": class_labels.to(self.device)}
        # Samplers already run under inference mode (entering it again costs a little); an x that requires grad
        # is differentiated through (the exact divergence of core/diffusion/likelihood.py).
        if torch.is_inference_mode_enabled() or x_t.requires_grad:
            out = self.model(model_in, time, **extra)
        else:
            with torch.inference_mode():
                out = self.model(model_in, time, **extra)
        return getattr(out, "sample", out).to(x_t.device, x_t.dtype)


class DiscreteTimeDenoiser(NetworkDenoiser):
    """Wraps a model trained on DDPM's x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps at integer t.

    model(x_t, t[, class_labels]) holds epsilon, x_0 ("sample") or v = sqrt(ab) eps - sqrt(1 - ab) x_0
    (Salimans & Ho 2022). For a VE input x at noise level sigma: ab = 1 / (1 + sigma^2), so
    x_t = x / sqrt(1 + sigma^2), and t comes from sigma by interpolation in log sigma (continuous t between
    training steps).
    """

    def __init__(
        self,
        model: Callable[..., Any],
        schedule: NoiseSchedule,
        prediction_type: str = "epsilon",
        num_classes: int | None = None,
    ) -> None:
        if prediction_type not in PREDICTION_TYPES[:3]:
            raise BadInputError(
                f"Unknown prediction type {prediction_type!r}; expected one of {', '.join(PREDICTION_TYPES)}"
                " (a flow model's denoiser is FlowDenoiser: see model_denoiser)."
            )
        super().__init__(model, num_classes)
        self.schedule = schedule
        self.prediction_type = prediction_type

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        s = sigma.to(x.dtype).reshape(-1, *(1,) * (x.ndim - 1))
        c_in = (1 + s * s).rsqrt()  # sqrt(ab)
        x_t = x * c_in
        out = self.run(x_t, self.schedule.sigma_to_t(sigma).float(), class_labels)
        if self.prediction_type == "epsilon":
            return x - s * out
        if self.prediction_type == "sample":
            return out
        # v = sqrt(ab) eps - sqrt(1-ab) x0  =>  x0 = sqrt(ab) x_t - sqrt(1-ab) v, with sqrt(1-ab) = sigma sqrt(ab)
        return c_in * (x_t - s * out)


class FlowDenoiser(NetworkDenoiser):
    """D(x, sigma) of a flow-matching velocity model `model(x_t, TIME_SCALE * t[, class_labels])`
    (core/diffusion/flow.py): x_t = x / (1 + sigma), t = sigma / (1 + sigma), D = x_t - t v."""

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(x_t, TIME_SCALE * t, class_labels)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        t = t_of_sigma(sigma.to(x.dtype).reshape(-1, *(1,) * (x.ndim - 1)))
        x_t = x * (1 - t)  # x / (1 + sigma)
        return x_t - t * self.velocity(x_t, t.reshape(-1), class_labels)


def model_denoiser(
    model: Callable[..., Any], schedule: NoiseSchedule, prediction_type: str, num_classes: int | None = None
) -> Denoiser:
    """The denoiser of a trained network: `FlowDenoiser` for a flow-matching (velocity) model, which needs no
    schedule (its time is t itself), else `DiscreteTimeDenoiser` on the schedule it was trained on."""
    if prediction_type == "flow_prediction":
        return FlowDenoiser(model, num_classes)
    return DiscreteTimeDenoiser(model, schedule, prediction_type, num_classes)


class ClassifierFreeGuidance:
    """D_w(x, sigma, c) = D(x, sigma, null) + w (D(x, sigma, c) - D(x, sigma, null)) (Ho & Salimans 2022).

    The conditional and unconditional halves run as ONE batched forward of size 2B. Guidance in x_0 is the
    same as guidance in epsilon or v, since each is affine in the others at fixed x and sigma.
    w = 1 is the conditional model (one pass of size B); w = 0 the unconditional one.

    `interval` = (lo, hi) applies the guidance only where lo < sigma <= hi and the conditional model alone
    elsewhere (Kynkäänniemi et al. 2024, "Applying Guidance in a Limited Interval Improves Sample and
    Distribution Quality in Diffusion Models"): guidance at high noise mostly costs diversity, at low noise
    it does little. Steps wholly outside the interval cost one pass of size B.
    """

    def __init__(
        self, denoiser: Denoiser, scale: float, null_label: int, interval: tuple[float, float] | None = None
    ) -> None:
        self.denoiser = denoiser
        self.scale = float(scale)
        self.null_label = int(null_label)
        if interval is not None and not 0 <= interval[0] < interval[1]:
            raise BadInputError("A guidance interval needs 0 <= low < high (in sigma).")
        self.interval = interval

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        scale = torch.full_like(sigma, self.scale, dtype=torch.float64)
        if self.interval is not None:
            lo, hi = self.interval
            scale = torch.where((sigma > lo) & (sigma <= hi), scale, torch.ones_like(scale))
        if bool((scale == 1.0).all()):
            return self.denoiser(x, sigma, class_labels=class_labels)
        null = torch.full_like(class_labels, self.null_label)
        both = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), class_labels=torch.cat([class_labels, null]))
        cond, uncond = both.chunk(2)
        w = scale.to(cond.dtype).reshape(-1, *(1,) * (cond.ndim - 1))
        return uncond + w * (cond - uncond)


def _contract(a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """sum_d a[b, d] m[g, k, d] -> [B, K], where g is 0 for every b (m of shape [1, K, D]) or b ([B, K, D])."""
    return a @ m[0].T if len(m) == 1 else torch.einsum("bd,bkd->bk", a, m)


def _contract_k(r: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """sum_k r[b, k] m[g, k, d] -> [B, D], with g as in `_contract`."""
    return r @ m[0] if len(m) == 1 else torch.einsum("bk,bkd->bd", r, m)


@dataclass(frozen=True)
class _MixtureTerms:
    """A mixture's formulas at one noise level, for G = 1 (one sigma for all) or G = B (one per sample).

    With var_k = s_k^2 + sigma^2, log N(x; mu_k, var_k) is expanded as x^2 / v - 2 x mu / v + mu^2 / v and
    the posterior mean as x0_k = mu_k (1 - g_k) + g_k x (the shrinkage g_k = s_k^2 / var_k), so that each is
    ONE matrix product against [x^2, x] or the responsibilities: on the CPU, summing over the tiny last axis
    of a [B, K, D] tensor, or several small products, costs several times more."""

    quad: torch.Tensor  # [G, K, 2D]: (1 / var_k, -2 mu_k / var_k), against (x^2, x)
    const: torch.Tensor  # [G, K]: sum_d (mu_k^2 / var_k + log(2 pi var_k)) - 2 log pi_k
    mean: torch.Tensor  # [G, K, 2D]: (mu_k (1 - g_k), g_k); x0 = r @ first half + x * (r @ second half)

    @classmethod
    def build(cls, mix: GaussianMixtureDenoiser, sigma: torch.Tensor) -> _MixtureTerms:
        """In coordinates centred on the mixture's mean (`mix._mu` = mu_k - centre), so that the expansion does
        not cancel away the digits of mixtures far from the origin."""
        s2, mu = mix.stds**2, mix._mu
        var = s2 + sigma.reshape(-1, 1, 1) ** 2
        inv = 1 / var
        gain = s2 * inv
        const = (mu**2 * inv + torch.log(2 * math.pi * var)).sum(-1) - 2 * mix.weights.log()
        return cls(quad=torch.cat([inv, -2 * mu * inv], -1), const=const, mean=torch.cat([mu - mu * gain, gain], -1))


class GaussianMixtureDenoiser:
    """The exact denoiser E[x_0 | x_0 + sigma eps = x] for a Gaussian mixture, in any dimension.

    Components k have mean mu_k [D], standard deviations s_k (a scalar per component, or per dimension)
    and weight pi_k. Blurred by noise sigma, component k becomes N(mu_k, s_k^2 + sigma^2), so
        D(x, sigma) = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)),
        r_k(x) proportional to pi_k N(x; mu_k, s_k^2 + sigma^2).
    Inputs of shape [B, ...] are flattened to [B, D]. class_labels (optional) pins each sample to one
    component (label == K means "any component"), which makes a class-conditional ground truth.
    """

    def __init__(self, means: torch.Tensor, stds: torch.Tensor | float, weights: torch.Tensor | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.ndim != 2:
            raise BadInputError("Mixture means must have shape [components, dimensions].")
        K, D = self.means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.ndim == 1 and len(stds) == K:
            stds = stds[:, None]  # one isotropic std per component
        if stds.ndim > 2 or not all(n in (1, m) for n, m in zip(stds.shape[::-1], (D, K), strict=False)):
            raise BadInputError("Mixture stds must be a scalar, one per component, or [components, dimensions].")
        self.stds = stds.expand(K, D).clone()
        w = torch.ones(K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        total = float(w.sum())
        if not (bool(self.means.isfinite().all()) and bool(self.stds.isfinite().all()) and math.isfinite(total)):
            raise BadInputError("Mixture means, stds and weights must be finite numbers.")
        if bool((self.stds <= 0).any() or (self.stds**2 <= 0).any()) or bool((w < 0).any()) or total <= 0:
            raise BadInputError("Mixture stds must be positive and weights non-negative with a positive sum.")
        self.weights = w / total
        self._centre = (self.weights[:, None] * self.means).sum(0)  # [D]
        self._mu = self.means - self._centre  # the means in centred coordinates (_MixtureTerms)
        self._cache: dict[float, _MixtureTerms] = {}
        # A cache entry holds K (4D + 1) float64 numbers: at most 32 MB of them, and at most 4,096 entries.
        self._cache_size = max(16, min(4096, 2**25 // (8 * K * (4 * D + 1))))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _terms(self, sigma: torch.Tensor) -> _MixtureTerms:
        """What the formulas need at noise level sigma [B]: per component when every sample has the same sigma
        (the usual case; kept for the last sigmas asked, since runs on the same grid ask for the same ones),
        else per sample."""
        s = sigma.to(torch.float64).cpu().reshape(-1)
        if len(s) > 1 and not bool((s == s[0]).all()):
            return _MixtureTerms.build(self, s)
        key = float(s[0])
        terms = self._cache.get(key)
        if terms is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            terms = self._cache[key] = _MixtureTerms.build(self, s[:1])
        return terms

    def _log_resp(self, x: torch.Tensor, terms: _MixtureTerms, class_labels: torch.Tensor | None) -> torch.Tensor:
        """log (pi_k N(x; mu_k, var_k)) [B, K], the unnormalised log responsibilities; x [B, D], centred."""
        logits = -0.5 * (_contract(torch.cat([x * x, x], 1), terms.quad) + terms.const)
        if class_labels is not None:
            K = len(self.weights)
            labels = class_labels.to(torch.long).cpu()
            pinned = labels < K
            mask = torch.zeros_like(logits, dtype=torch.bool)
            mask[pinned] = True
            mask[pinned, labels[pinned]] = False
            logits = logits.masked_fill(mask, -math.inf)
        return logits

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        flat = x.reshape(len(x), -1).to(torch.float64).cpu() - self._centre
        terms = self._terms(sigma)
        logits = self._log_resp(flat, terms, class_labels)
        resp = (logits - logits.amax(1, keepdim=True)).exp()
        resp = resp / resp.sum(1, keepdim=True)  # softmax over k, [B, K]; torch.softmax is slower on so short a row
        offset, gain = _contract_k(resp, terms.mean).chunk(2, dim=1)  # sum_k resp_k (mu_k (1 - g_k), g_k)
        x0 = self._centre + offset + flat * gain
        return x0.reshape(x.shape).to(x.device, x.dtype)

    def responsibilities(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        """P(component k | x) under the mixture blurred by noise sigma; x [B, D] -> [B, K]."""
        logits = self._log_resp(self._centred(x), self._terms(torch.tensor([float(sigma)])), None)
        return torch.softmax(logits, dim=1)

    def log_prob(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        """log p_sigma(x) of the mixture blurred by noise sigma; x [B, D] -> [B]."""
        logits = self._log_resp(self._centred(x), self._terms(torch.tensor([float(sigma)])), None)
        return torch.logsumexp(logits, dim=1)

    def _centred(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64).cpu() - self._centre

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 (Tweedie's formula)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype).expand(len(x))
        return (self(x, sigma) - x) / _bcast(sigma, x) ** 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws from the mixture: points [n, D] (float64) and their component labels [n]."""
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[labels] + self.stds[labels] * z, labels


def with_labels(
    denoiser: Denoiser,
    labels: torch.Tensor,
    guidance: float = 1.0,
    null_label: int | None = None,
    interval: tuple[float, float] | None = None,
) -> Denoiser:
    """D(x, sigma) for a batch whose sample k has class labels[k], under classifier-free guidance `guidance`
    (1: the conditional model alone; any other scale mixes in the unconditional half, labelled `null_label`),
    applied only for sigma in `interval` when one is given (see ClassifierFreeGuidance).

    This is how conditioning reaches a sampler: bound into the denoiser, here with functools.partial.
    """
    if guidance != 1.0:
        if null_label is None:
            raise BadInputError("Guidance needs a model with an unconditional (no class) label.")
        denoiser = ClassifierFreeGuidance(denoiser, guidance, null_label, interval)
    return functools.partial(denoiser, class_labels=labels)


def clip_denoised(denoiser: Denoiser, lo: float = -1.0, hi: float = 1.0) -> Denoiser:
    """Clamp the x_0 estimate to the data range, as DDPM's reference sampler does (`clip_sample`)."""

    def clipped(x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
        return denoiser(x, sigma, **cond).clamp(lo, hi)

    return clipped
