"""The engine's one interface: a denoiser D(x, sigma, **cond) -> estimate of x_0.

x is in variance-exploding coordinates, x = x_0 + sigma * eps, with sigma of shape [B]. Every sampler
calls only this, so any model (epsilon, x_0 or v prediction, discrete or continuous time) and the exact
Gaussian-mixture denoiser run under every sampler.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import torch

from core.diffusion.flow import TIME_SCALE, t_of_sigma
from core.diffusion.guidance import Guidance, as_guidance, guided
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
        field) in the state's own precision. On the CPU, a batch of images goes through the network
        `CPU_IMAGES` at a time: a UNet's activations for 100 MNIST digits peaked at 135 MB against 16 MB for
        pieces of 25, and the pieces ran 10-15% faster (cache-sized; the server's memory is small)."""
        model_in = x_t if self.dtype is None else x_t.to(self.device, self.dtype)
        time = time if self.dtype is None else time.to(self.device, torch.float32)
        labels = None if class_labels is None else class_labels.to(self.device)
        if self.dtype is None or self.device.type != "cpu" or x_t.ndim < 4 or len(x_t) <= CPU_IMAGES:
            return self._call(model_in, time, labels).to(x_t.device, x_t.dtype)
        pieces = [
            self._call(
                model_in[i : i + CPU_IMAGES],
                time[i : i + CPU_IMAGES] if time.ndim else time,
                None if labels is None else labels[i : i + CPU_IMAGES],
            )
            for i in range(0, len(x_t), CPU_IMAGES)
        ]
        return torch.cat(pieces).to(x_t.device, x_t.dtype)

    def _call(self, model_in: torch.Tensor, time: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        extra = {} if labels is None else {"class_labels": labels}
        # Samplers already run under inference mode (entering it again costs a little); an x that requires grad
        # is differentiated through (the exact divergence of core/diffusion/likelihood.py).
        if torch.is_inference_mode_enabled() or model_in.requires_grad:
            out = self.model(model_in, time, **extra)
        else:
            with torch.inference_mode():
                out = self.model(model_in, time, **extra)
        return getattr(out, "sample", out)


CPU_IMAGES = 25  # images per network call on the CPU (see NetworkDenoiser.run)


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


def with_labels(
    denoiser: Denoiser,
    labels: torch.Tensor,
    guidance: float | Guidance = 1.0,
    null_label: int | None = None,
    interval: tuple[float, float] | None = None,
    *,
    guide: Denoiser | None = None,
    sigmas: torch.Tensor | None = None,
) -> Denoiser:
    """D(x, sigma) for a batch whose sample k has class labels[k], under `guidance` (core/diffusion/guidance.py):
    a scale alone is classifier-free guidance at that scale, applied only for sigma in `interval` when one is
    given (1: the conditional model alone; any other scale mixes in the unconditional half, labelled
    `null_label`). Autoguidance takes its weaker model as `guide`; CFG++ the sampling grid `sigmas`.

    This is how conditioning reaches a sampler: bound into the denoiser, here with functools.partial.
    """
    denoiser = guided(denoiser, as_guidance(guidance, interval), null_label, guide, sigmas)
    return functools.partial(denoiser, class_labels=labels)


class LimitedDenoiser:
    """A denoiser whose x_0 estimate is held to the data's range by `limit` ([B, ...] -> [B, ...]): clipping or
    dynamic thresholding. `pair` gives the estimate before and after the limit from one evaluation, for a
    sampler that steps along the model's own noise (diffusers' DDIM: `core/diffusion/samplers.ddim`)."""

    def __init__(self, denoiser: Denoiser, limit: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.denoiser, self.limit = denoiser, limit

    def pair(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.denoiser(x, sigma, **cond)
        return raw, self.limit(raw)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
        return self.limit(self.denoiser(x, sigma, **cond))


def clip_denoised(denoiser: Denoiser, lo: float = -1.0, hi: float = 1.0) -> LimitedDenoiser:
    """Clamp the x_0 estimate to the data range, as DDPM's reference sampler does (`clip_sample`, with
    `clip_sample_range` = hi = -lo)."""
    return LimitedDenoiser(denoiser, lambda x0: x0.clamp(lo, hi))


def threshold_denoised(denoiser: Denoiser, ratio: float = 0.995, max_value: float = 1.0) -> LimitedDenoiser:
    """Dynamic thresholding of the x_0 estimate (Saharia et al. 2022, "Photorealistic Text-to-Image Diffusion
    Models with Deep Language Understanding", section 2.3; diffusers' `thresholding`): per image, s is the
    `ratio` quantile of |x_0| over all its pixels and channels, held to [1, max_value]; x_0 is clamped to
    [-s, s] and divided by s. With s = 1 this is plain clipping to [-1, 1]."""
    if not 0 < ratio <= 1 or max_value < 1:
        raise BadInputError("Dynamic thresholding needs a ratio in (0, 1] and a sample_max_value of at least 1.")

    def threshold(x0: torch.Tensor) -> torch.Tensor:
        flat = x0.reshape(len(x0), -1)
        work = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()  # quantile needs a float
        s = torch.quantile(work.abs(), ratio, dim=1).clamp(1, max_value).unsqueeze(1)
        return (torch.clamp(work, -s, s) / s).to(x0.dtype).reshape(x0.shape)

    return LimitedDenoiser(denoiser, threshold)
