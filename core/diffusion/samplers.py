r"""Reverse-process samplers: one plain function each, one signature.

    fn(denoiser, x, sigmas, *, generator=None, callback=None, **options) -> x_0 sample

x is the starting noise already scaled by sigmas[0]; sigmas is a decreasing grid (float tensor) ending in
0; the denoiser is D(x, sigma) -> x_0 in variance-exploding coordinates x = x_0 + sigma eps (see
core/diffusion/denoisers.py). Conditioning is bound into the denoiser (`with_labels`: functools.partial,
through a CFG wrapper under guidance).
Throughout, d = (x - D(x, sigma)) / sigma is the predicted noise eps, which is also dx/dsigma of the
probability-flow ODE (Karras et al. 2022, eq. 4 with sigma(t) = t).

`generator` is a torch.Generator, or a list of them with one per sample so that sample k of a batch is
reproducible alone, or a noise source called as source(x, sigma, sigma_next) for the noise of that step
(`core.diffusion.brownian.BrownianNoise`: one Brownian path for runs on any grid). `callback` gets a `Step`
per denoiser step (the state x at sigma, D(x), eps).
Stochastic samplers (those that can draw fresh noise) also take `noise_until=k`: from step k on they add no
fresh noise and take their deterministic (eta = 0) step instead, which shows how much of the result the late
noise decides.

Each function's docstring gives its update rule and paper; the app shows that docstring beside the
function's source, so the code shown is the code run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from core.diffusion.denoisers import Denoiser
from core.errors import BadInputError
from core.numbers import parse_number

NoiseSource = Callable[[torch.Tensor, float, float], torch.Tensor]
Generator = torch.Generator | Sequence[torch.Generator] | NoiseSource | None


@dataclass(frozen=True)
class Step:
    """What a sampler reports after each denoiser step."""

    index: int
    sigma: float
    sigma_next: float
    x: torch.Tensor  # the state at noise level sigma
    denoised: torch.Tensor  # D(x, sigma), the predicted x_0

    @cached_property
    def eps(self) -> torch.Tensor:
        """The predicted noise (x - x_0) / sigma."""
        return (self.x - self.denoised) / self.sigma


Callback = Callable[[Step], None] | None


def randn_like(x: torch.Tensor, generator: Generator, sigma: float = 1.0, sigma_next: float = 0.0) -> torch.Tensor:
    """Standard normal noise shaped like x for the step sigma -> sigma_next, drawn on the CPU (same numbers on
    every device).

    With a list of generators, row k is drawn from generator k alone; a noise source gives the step's noise.
    """
    if callable(generator):
        return generator(x, sigma, sigma_next)
    if generator is None or isinstance(generator, torch.Generator):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    else:
        if len(generator) != len(x):
            raise BadInputError(f"Got {len(generator)} generators for a batch of {len(x)}.")
        z = torch.cat([torch.randn((1, *x.shape[1:]), generator=g, dtype=x.dtype) for g in generator])
    return z.to(x.device)


def _sigma_vec(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return x.new_full((len(x),), sigma)


def _report(callback: Callback, i: int, s: float, s_next: float, x: torch.Tensor, denoised: torch.Tensor) -> None:
    if callback is not None:
        callback(Step(i, s, s_next, x, denoised))


def _noisy(i: int, noise_until: int | None) -> bool:
    """Whether step i still injects fresh noise: every step, or only steps before `noise_until`."""
    return noise_until is None or i < noise_until


def analytic_first_step(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""The analytic first step (AFS): a stand-in for D(x, sigma) at the top of the grid that costs no model call.

    Zhou, Chen, Wang & Chen 2024, "Fast ODE-based Sampling for Diffusion Models in Around 5 Steps" (CVPR; their
    diff-sampler toolbox takes the first step's slope as $x/\sqrt{1 + \sigma^2}$ wherever its `afs` flag is on).
    Why: in the model's own (VP) scale the state is $y = x/\sqrt{1 + \sigma^2} = a\,x_0 + \sqrt{1 - a^2}\,\epsilon$
    with $a = 1/\sqrt{1 + \sigma^2}$, which is 0.0125 at sigma = 80. Where sampling starts the data's share of y is
    negligible, so y itself is the estimate of the noise:

    $$\hat\epsilon = \frac{x}{\sqrt{1 + \sigma^2}},\qquad D \approx x - \sigma\hat\epsilon
    = \frac{x}{\sqrt{1 + \sigma^2}\,\big(\sqrt{1 + \sigma^2} + \sigma\big)}$$

    (the second form is the same number without the cancellation in $1 - \sigma/\sqrt{1 + \sigma^2}$). How good it
    is: for Gaussian data of zero mean and unit variance per axis the exact noise estimate is
    $\epsilon^* = \sigma x/(1 + \sigma^2)$, so AFS's is $\epsilon^*\sqrt{1 + \sigma^2}/\sigma$, a relative
    $1/(2\sigma^2)$ too long (8e-5 at sigma = 80). Other centred data of unit covariance have the same leading
    term (their exact D is $x/\sigma^2$ to leading order whatever their law), so AFS is off by that same relative
    $1/(2\sigma^2)$. Data with a mean $\mu$ away from 0 add an error of about $\mu/\sigma$ to the noise (AFS takes
    the data to be centred), and a grid that starts at a small sigma breaks the premise altogether.
    """
    root = math.sqrt(1 + sigma**2)
    return x / (root * (root + sigma))


def _analytic_first(afs: str, steps: int) -> bool:
    """Whether a run of `steps` steps takes its first D from `analytic_first_step`: with afs on, unless that first
    step is also the last (a one-step run would then call no model at all)."""
    if afs not in ("off", "on"):
        raise BadInputError("The analytic first step (afs) must be on or off.")
    return afs == "on" and steps > 1


def ancestral_split(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    r"""Split a step sigma -> sigma_next into a deterministic part to sigma_down and fresh noise sigma_up.

    $\sigma_{up} = \min\big(\sigma',\ \eta\,\sqrt{\sigma'^2 (\sigma^2 - \sigma'^2) / \sigma^2}\big)$,
    $\sigma_{down} = \sqrt{\sigma'^2 - \sigma_{up}^2}$, so the marginal noise level after the step is sigma'.
    With eta = 1 this is exactly DDPM's posterior variance, with eta = 0 it is DDIM.
    """
    if sigma_next == 0:
        return 0.0, 0.0
    up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
    return math.sqrt(sigma_next**2 - up**2), up


def ddpm(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    variance: str = "small",
    noise_until: int | None = None,
) -> torch.Tensor:
    r"""DDPM ancestral sampling: draw $x_{t-1}$ from the Gaussian posterior $q(x_{t-1} \mid x_t, x_0 = D(x_t))$.

    Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models", Algorithm 2. In VE coordinates
    ($\sigma' =$ next sigma, $\hat x_0 = D(x, \sigma)$, $\hat\epsilon = (x - \hat x_0)/\sigma$):

    $$x' = \hat x_0 + \frac{\sigma'^2}{\sigma}\,\hat\epsilon + s\,z,\qquad z \sim \mathcal N(0, I)$$

    small variance (the posterior's, $\tilde\beta_t$): $s^2 = \sigma'^2(\sigma^2 - \sigma'^2)/\sigma^2$;
    large variance ($\beta_t$): $s^2 = (\sigma^2 - \sigma'^2)(1 + \sigma'^2)/(1 + \sigma^2)$.
    Skipped steps use $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t'}$. The last step returns $\hat x_0$.
    With the small variance this is exactly Euler ancestral at eta = 1 (its $\sigma_{down} = \sigma'^2/\sigma$ and
    $\sigma_{up} = s$), so at the same seed the two give the same images, pixel for pixel.
    """
    if variance not in ("small", "large"):
        raise BadInputError("DDPM variance must be 'small' or 'large'.")
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:
            x = denoised
            continue
        eps = (x - denoised) / s
        if not _noisy(i, noise_until):  # noise switched off: the deterministic (DDIM) step
            x = denoised + s_next * eps
            continue
        if variance == "small":
            var = s_next**2 * (s**2 - s_next**2) / s**2
        else:
            var = (s**2 - s_next**2) * (1 + s_next**2) / (1 + s**2)
        x = denoised + (s_next**2 / s) * eps + math.sqrt(var) * randn_like(x, generator, s, s_next)
    return x


def ddim(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    eta: float = 0.0,
    noise_until: int | None = None,
    direction: str = "estimate",
) -> torch.Tensor:
    r"""DDIM: predict $x_0$, then step to the next noise level along the predicted noise.

    Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12. In VP form
    $x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'} - s_t^2}\,\hat\epsilon + s_t z$,
    with $s_t = \eta\sqrt{(1-\bar\alpha_{t'})/(1-\bar\alpha_t)}\sqrt{1-\bar\alpha_t/\bar\alpha_{t'}}$.
    Divided by $\sqrt{\bar\alpha_{t'}}$ this is, in VE coordinates,

    $$x' = \hat x_0 + \sigma_{down}\,\hat\epsilon + \sigma_{up}\,z$$

    with $\sigma_{up}, \sigma_{down}$ from `ancestral_split`. eta = 0 is deterministic (identical to Euler
    on the probability-flow ODE); eta = 1 is DDPM with the small variance.

    Since $\hat x_0 + \sigma_{down}\hat\epsilon = x + (\sigma_{down} - \sigma)\,\hat\epsilon$, this is
    Euler ancestral's update: DDIM is `euler_ancestral` with its own default, eta = 0.

    Where $\hat x_0$ is clipped or thresholded (core/diffusion/denoisers.LimitedDenoiser), `direction` says which
    noise the step follows: "estimate", the one implied by the limited $\hat x_0$ (Glide; this is Euler
    ancestral), or "model", the network's own $\hat\epsilon$ from before the limit, as diffusers'
    DDIMScheduler does by default (`use_clipped_model_output=False`); see `euler_ancestral`.
    """
    return euler_ancestral(
        denoiser,
        x,
        sigmas,
        generator=generator,
        callback=callback,
        eta=eta,
        noise_until=noise_until,
        direction=direction,
    )


def euler(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    r"""Euler's method on the probability-flow ODE $dx/d\sigma = (x - D(x, \sigma))/\sigma$.

    Karras, Aittala, Aila & Laine 2022, "Elucidating the Design Space of Diffusion-Based Generative
    Models" (EDM), eq. 4. First order: the error shrinks like 1/steps.

    $$d = \frac{x - D(x, \sigma)}{\sigma},\qquad x' = x + (\sigma' - \sigma)\,d$$
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        d = (x - denoised) / s
        x = x + (s_next - s) * d
    return x


def euler_ancestral(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    eta: float = 1.0,
    noise_until: int | None = None,
    direction: str = "estimate",
) -> torch.Tensor:
    r"""Euler ancestral: an Euler step down to $\sigma_{down}$, then fresh noise back up to $\sigma'$.

    The ancestral sampler of k-diffusion (Crowson 2022), built on Song et al. 2021 (score SDEs).

    $$x' = x + (\sigma_{down} - \sigma)\,d + \sigma_{up}\,z$$

    $$\begin{aligned} \sigma_{up} &= \min\Big(\sigma', \eta\sqrt{\tfrac{\sigma'^2(\sigma^2-\sigma'^2)}{\sigma^2}}\Big)
    \\ \sigma_{down} &= \sqrt{\sigma'^2 - \sigma_{up}^2} \end{aligned}$$

    Fresh noise at every step keeps the sampler stochastic: results never settle as steps grow. At eta = 1 it
    is DDPM's ancestral step (small variance) written in VE coordinates: the same images at the same seed.
    DDIM (`ddim`) is this very update with eta = 0 by default.

    With `direction="model"` (DDIM's option) the step is written $x' = \hat x_0 + \sigma_{down}\hat\epsilon$
    (exact where sigma is huge: a zero-terminal-SNR schedule's first step), with $\hat\epsilon$ the network's own
    noise from before a clipped or thresholded $\hat x_0$ (core/diffusion/denoisers.LimitedDenoiser).
    """
    pair = getattr(denoiser, "pair", None)
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        if direction == "model":
            raw, denoised = pair(x, _sigma_vec(x, s)) if pair is not None else (denoiser(x, _sigma_vec(x, s)),) * 2
        else:
            denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        sigma_down, sigma_up = ancestral_split(s, s_next, eta if _noisy(i, noise_until) else 0.0)
        if direction == "model":
            x = denoised + sigma_down * ((x - raw) / s)
        else:
            d = (x - denoised) / s
            x = x + (sigma_down - s) * d
        if sigma_up > 0:
            x = x + sigma_up * randn_like(x, generator, s, s_next)
    return x


def consistency(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    noise_until: int | None = None,
) -> torch.Tensor:
    r"""Multistep consistency sampling: jump to the data in one call, add the next noise level afresh, repeat.

    Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models", Algorithm 1 (diffusers' LCMScheduler takes this
    very step, its CMStochasticIterativeScheduler the same above its smallest sigma). A consistency model's
    $D(x, \sigma)$ is its whole ODE solution, the end point of the trajectory through x, so no step integrates
    anything: each one re-draws the noise at the next level around the current guess, with fresh
    $z \sim \mathcal N(0, I)$,

    $$\hat x_0 = D(x, \sigma),\qquad x' = \hat x_0 + \sigma'\,z$$

    and the last step returns $\hat x_0$. One step is the model's one-step sample; more steps let it correct its
    guess from partly fresh noise. All the noise is fresh at every step, more than any eta of an ancestral sampler
    gives. Meant for one- and few-step models (consistency models, distilled students): with an ordinary denoiser,
    whose $D$ is a posterior mean, each step keeps only that blurred mean, and the result sharpens only as the grid
    gets fine near 0. With the noise switched off (`noise_until`) the step is DDIM's,
    $x' = \hat x_0 + \sigma'(x - \hat x_0)/\sigma$.
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:
            x = denoised
        elif _noisy(i, noise_until):
            x = denoised + s_next * randn_like(x, generator, s, s_next)
        else:
            x = denoised + s_next * ((x - denoised) / s)
    return x


def heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    r"""Heun's method (explicit trapezoid): an Euler step, then the average of both slopes.

    Karras et al. 2022 (EDM), Algorithm 1. Second order; 2 denoiser calls per step, 1 on the last step
    (which ends at sigma = 0, where the slope is undefined).

    $$\begin{aligned} \tilde x &= x + (\sigma' - \sigma)\,d(x, \sigma) \\
    x' &= x + \tfrac{\sigma' - \sigma}{2}\big(d(x, \sigma) + d(\tilde x, \sigma')\big) \end{aligned}$$
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        d = (x - denoised) / s
        x_euler = x + (s_next - s) * d
        if s_next == 0:
            x = x_euler
            continue
        d_next = (x_euler - denoiser(x_euler, _sigma_vec(x, s_next))) / s_next
        x = x + (s_next - s) * (d + d_next) / 2
    return x


def lms_coefficients(sigmas: Sequence[float], i: int, order: int) -> list[float]:
    r"""$\int_{\sigma_i}^{\sigma_{i+1}} \ell_j(\tau)\,d\tau$ for the Lagrange basis $\ell_j$ through
    $\sigma_i, \sigma_{i-1}, \ldots, \sigma_{i-order+1}$ (j = 0 is the newest point).

    Integrated exactly in the step's own variable $u = (\tau - \sigma_i)/h$, $h = \sigma_{i+1} - \sigma_i$, over
    [0, 1]: in $\tau$ itself the antiderivatives at two nearby sigmas of a fine grid cancel to round-off."""
    h = sigmas[i + 1] - sigmas[i]
    nodes = [(sigmas[i - j] - sigmas[i]) / h for j in range(order)]
    coeffs = []
    for j in range(order):
        poly = [1.0]  # coefficients of prod_{k != j} (u - u_k) / (u_j - u_k), lowest power first
        for k, u_k in enumerate(nodes):
            if k != j:  # times (u - u_k) / (u_j - u_k): new[m] = (old[m - 1] - u_k old[m]) / (u_j - u_k)
                scale = nodes[j] - u_k
                poly = [(lo - u_k * hi) / scale for lo, hi in zip([0.0, *poly], [*poly, 0.0], strict=True)]
        coeffs.append(h * sum(c / (m + 1) for m, c in enumerate(poly)))
    return coeffs


def lms(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    order: int = 4,
    afs: str = "off",
) -> torch.Tensor:
    r"""Linear multistep (Adams-Bashforth in sigma): reuse the last `order` slopes, one call per step.

    Karras et al. 2022 use it as a baseline; k-diffusion (Crowson) and diffusers' LMSDiscreteScheduler.
    The slopes $d_{i-j}$ are interpolated by a polynomial in $\sigma$ and integrated over the step:

    $$\begin{aligned} x_{i+1} &= x_i + \sum_{j=0}^{k-1} d_{i-j} \int_{\sigma_i}^{\sigma_{i+1}} \ell_j(\tau)\,d\tau \\
    k &= \min(i + 1, \text{order}) \end{aligned}$$

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer.
    """
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    if not 1 <= order <= 4:
        raise BadInputError("LMS order must be between 1 and 4.")
    slopes: list[torch.Tensor] = []
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        slopes = [(x - denoised) / s, *slopes][:order]
        for c, d in zip(lms_coefficients(sig, i, len(slopes)), slopes, strict=True):
            x = x + c * d
    return x


def dpm_2(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    r"""DPM-Solver-2 in its k-diffusion form: a midpoint step, the midpoint taken in log sigma.

    Lu, Zhou, Bao, Chen, Li & Zhu 2022, "DPM-Solver", Algorithm 4 (r = 1/2), as adapted by Karras et al.
    2022. Second order, 2 calls per step (1 on the last).

    $$\begin{aligned} \sigma_m &= \sqrt{\sigma\sigma'} \\ \tilde x &= x + (\sigma_m - \sigma)\,d(x, \sigma) \\
    x' &= x + (\sigma' - \sigma)\,d(\tilde x, \sigma_m) \end{aligned}$$
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        d = (x - denoised) / s
        if s_next == 0:
            x = x + (s_next - s) * d
            continue
        s_mid = math.sqrt(s * s_next)
        x_mid = x + (s_mid - s) * d
        d_mid = (x_mid - denoiser(x_mid, _sigma_vec(x, s_mid))) / s_mid
        x = x + (s_next - s) * d_mid
    return x


def dpmpp_2m(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    afs: str = "off",
) -> torch.Tensor:
    r"""DPM-Solver++(2M): second-order multistep solver in the data ($x_0$) prediction.

    Lu, Zhou, Bao, Chen, Li & Zhu 2022, "DPM-Solver++", Algorithm 2. With $\lambda = -\log\sigma$,
    $h = \lambda' - \lambda$ and $r = h_{prev}/h$, the exact linear part is integrated and $D$ is
    extrapolated from this step's and the previous step's estimates:

    $$\begin{aligned} x' = \frac{\sigma'}{\sigma}\,x &- (e^{-h} - 1)\,\Big[\big(1 + \tfrac{1}{2r}\big)D_i \\
    &- \tfrac{1}{2r}D_{i-1}\Big] \end{aligned}$$

    The first step (no history) and the last (to sigma = 0) are first order. One call per step.

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer.
    """
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    old_denoised, h_last = None, None
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s / s_next)
        if old_denoised is None:
            d_hat = denoised
        else:
            r = h_last / h
            d_hat = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (s_next / s) * x - math.expm1(-h) * d_hat
        old_denoised, h_last = denoised, h
    return x


def dpmpp_2s_ancestral(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    eta: float = 1.0,
    noise_until: int | None = None,
) -> torch.Tensor:
    r"""DPM-Solver++(2S) ancestral: a two-stage DPM-Solver++ step to $\sigma_{down}$, then fresh noise.

    Lu et al. 2022, "DPM-Solver++", Algorithm 1 (single-step, r = 1/2), made ancestral as in k-diffusion.
    With $\lambda = -\log\sigma$, $h = \log(\sigma/\sigma_{down})$ and the midpoint
    $\sigma_m = \sqrt{\sigma\sigma_{down}}$:

    $$u = \frac{\sigma_m}{\sigma}x - (e^{-h/2} - 1)D(x, \sigma)$$

    $$x' = \frac{\sigma_{down}}{\sigma}x - (e^{-h} - 1)D(u, \sigma_m) + \sigma_{up}z$$

    2 calls per step (1 on the last).
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        sigma_down, sigma_up = ancestral_split(s, s_next, eta if _noisy(i, noise_until) else 0.0)
        if sigma_down == 0:
            x = denoised
        else:
            h = math.log(s / sigma_down)
            s_mid = math.sqrt(s * sigma_down)
            u = (s_mid / s) * x - math.expm1(-h / 2) * denoised
            x = (sigma_down / s) * x - math.expm1(-h) * denoiser(u, _sigma_vec(x, s_mid))
        if sigma_up > 0:
            x = x + sigma_up * randn_like(x, generator, s, s_next)
    return x


def dpmpp_2m_sde(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    eta: float = 1.0,
    noise_until: int | None = None,
) -> torch.Tensor:
    r"""DPM-Solver++(2M) SDE: the multistep solver for the reverse SDE, with a midpoint correction.

    Lu et al. 2022, "DPM-Solver++", section 4 (SDE variant), in k-diffusion's form. With
    $h = \log(\sigma/\sigma')$ and $\eta h$ the share of the step taken by fresh noise:

    $$\begin{aligned} x' &= \frac{\sigma'}{\sigma}e^{-\eta h}x + (1 - e^{-(1+\eta)h})D_i \\
    &\quad + \tfrac{1}{2r}(1 - e^{-(1+\eta)h})(D_i - D_{i-1}) \\
    &\quad + \sigma'\sqrt{1 - e^{-2\eta h}}\,z \end{aligned}$$

    eta = 0 gives a deterministic second-order ODE solver. One call per step.
    """
    sig = sigmas.tolist()
    old_denoised, h_last = None, None
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s / s_next)
        eta_i = eta if _noisy(i, noise_until) else 0.0
        eta_h = eta_i * h
        x = (s_next / s) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
        if old_denoised is not None:
            r = h_last / h
            x = x - 0.5 / r * math.expm1(-h - eta_h) * (denoised - old_denoised)
        if eta_i > 0:
            x = x + s_next * math.sqrt(-math.expm1(-2 * eta_h)) * randn_like(x, generator, s, s_next)
        old_denoised, h_last = denoised, h
    return x


def _phi_weights(hh: float, order: int) -> list[float]:
    r"""$k!\,\varphi_{k+1}(hh)$ for k = 1..order, where $\varphi_1(z) = (e^z - 1)/z$ and
    $\varphi_{k+1}(z) = (\varphi_k(z) - 1/k!)/z$: the integrals $\frac{1}{h}\int_0^1 e^{hh(1-u)}u^k\,du$ scaled so
    that each tends to 1/(k+1) as the step shrinks; UniPC's right-hand side."""
    out, g, factorial = [], math.expm1(hh) / hh - 1, 1
    for k in range(1, order + 1):
        out.append(g * factorial)
        factorial *= k + 1
        g = g / hh - 1 / factorial
    return out


def unipc(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    order: int = 2,
    variant: str = "bh2",
    corrector: str = "on",
    afs: str = "off",
) -> torch.Tensor:
    r"""UniPC: a multistep predictor (UniP) and a corrector (UniC) that reuses the next step's model call, so the
    correction costs no extra evaluation.

    Zhao, Bai, Rao, Zhou & Lu 2023, "UniPC", in the data prediction with $\lambda = -\log\sigma$,
    $h = \lambda_{i+1} - \lambda_i$ and earlier estimates at $r_m = (\lambda_{i-m} - \lambda_i)/h$:

    $$\begin{aligned} x' &= \frac{\sigma'}{\sigma}x - (e^{-h} - 1)D_i \\
    &\quad - B(h)\sum_{m} a_m \frac{D_{i-m} - D_i}{r_m} \end{aligned}$$

    The weights solve $\sum_m a_m r_m^{k-1} = k!\,\varphi_{k+1}(-h)/B(h)$ for k = 1, 2, ...; B(h) = -h
    ("bh1") or $e^{-h} - 1$ ("bh2"). The corrector redoes the step once $D_{i+1}$ is known, with one more point
    ($r = 1$) in the same sums; the next step starts from the corrected state. Order p uses p - 1 earlier
    estimates (fewer at the start, and the last steps drop to order 1, 2, ... as diffusers'
    UniPCMultistepScheduler does with `lower_order_final`); one call per step.

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer.
    """
    if not 1 <= order <= 3:
        raise BadInputError("UniPC's order must be 1, 2 or 3.")
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    n = len(sig) - 1
    lams: list[float] = []  # lambda_j of the estimates below, oldest first
    ests: list[torch.Tensor] = []  # D_j
    start, used = x, 0  # the last predictor's starting state and order
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:  # the last step lands on D itself (a correction could not change it)
            x = denoised
            continue
        if ests and corrector == "on":
            x = _unipc_step(start, sig[i - 1], s, lams, ests, used, variant, new=denoised)
        lams, ests = [*lams, -math.log(s)][-order:], [*ests, denoised][-order:]
        used = min(order, len(ests), n - i)
        start = x
        x = _unipc_step(x, s, s_next, lams, ests, used, variant)
    return x


def _unipc_step(
    x: torch.Tensor,
    s: float,
    s_next: float,
    lams: list[float],
    ests: list[torch.Tensor],
    order: int,
    variant: str,
    new: torch.Tensor | None = None,
) -> torch.Tensor:
    """One UniP step from (x, s) to s_next of the given order, with ests[-1] = D at s; with `new` (D at s_next),
    the UniC correction of that step instead."""
    h = math.log(s / s_next)
    lam = -math.log(s)
    b_h = -h if variant == "bh1" else math.expm1(-h)
    rhs = [w / b_h for w in _phi_weights(-h, order)]
    ratios = [(lams[-1 - m] - lam) / h for m in range(1, order)]  # r_m of the earlier estimates
    diffs = [(ests[-1 - m] - ests[-1]) / r for m, r in enumerate(ratios, start=1)]
    if new is not None:
        ratios, diffs = [*ratios, 1.0], [*diffs, new - ests[-1]]
    size = len(ratios)  # the predictor solves for order - 1 weights, the corrector for order
    if size == 0:
        weights: list[float] = []
    elif size == 1:
        weights = [0.5]  # the second-order weight in the limit of small steps, as the paper's UniP-2 and UniC-1
    else:
        system = torch.tensor([[r**k for r in ratios] for k in range(size)], dtype=torch.float64)
        weights = torch.linalg.solve(system, torch.tensor(rhs[:size], dtype=torch.float64)).tolist()
    x = (s_next / s) * x - math.expm1(-h) * ests[-1]
    for w, d in zip(weights, diffs, strict=True):
        x = x - b_h * w * d
    return x


def deis_coefficients(sigmas: Sequence[float], i: int, order: int) -> list[float]:
    r"""$\int_{\sigma_i}^{\sigma_{i+1}} \ell_j(\log\tau)\,d\tau$ for the Lagrange basis $\ell_j$ in log sigma
    through $\sigma_i, \ldots, \sigma_{i-order+1}$ (j = 0 the newest): in $u = \log(\tau/\sigma_i)$ it is
    $\sigma_i\int_0^{w} \ell_j(u)\,e^u\,du$, taken by 16-point Gauss-Legendre (exact to round-off for these
    smooth integrands over any step a grid takes)."""
    nodes = [math.log(sigmas[i - j] / sigmas[i]) for j in range(order)]
    w = math.log(sigmas[i + 1] / sigmas[i])
    points, weights = _GAUSS_16
    u = [(p + 1) * w / 2 for p in points]
    coeffs = []
    for j in range(order):
        total = 0.0
        for uq, wq in zip(u, weights, strict=True):
            basis = math.prod((uq - nodes[k]) / (nodes[j] - nodes[k]) for k in range(order) if k != j)
            total += wq * basis * math.exp(uq)
        coeffs.append(sigmas[i] * total * w / 2)
    return coeffs


_GAUSS_16 = tuple(tuple(a.tolist()) for a in np.polynomial.legendre.leggauss(16))


def deis(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    order: int = 3,
    afs: str = "off",
) -> torch.Tensor:
    r"""DEIS: the exponential integrator with the noise prediction extrapolated over the last steps
    (time-AB, "tAB").

    Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator". In these coordinates
    the exponential integrator is $x' = x + \int_\sigma^{\sigma'} \epsilon\,d\tau$; $\epsilon$ is the polynomial
    in $\log\sigma$ through the last k estimates (as diffusers' DEISMultistepScheduler; the paper's time
    variable), integrated exactly:

    $$\begin{aligned} x_{i+1} &= x_i + \sum_{j=0}^{k-1} \epsilon_{i-j} \int_{\sigma_i}^{\sigma_{i+1}}
    \ell_j(\log\tau)\,d\tau \end{aligned}$$

    k = min(i + 1, order); with fewer than 15 steps the step before the last takes at most order 2 (as diffusers'
    `lower_order_final`), and the last, to sigma = 0, is D itself. One call per step.

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer.
    """
    if not 1 <= order <= 3:
        raise BadInputError("DEIS's order must be 1, 2 or 3.")
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    n = len(sig) - 1
    slopes: list[torch.Tensor] = []
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        slopes = [(x - denoised) / s, *slopes][:order]
        if s_next == 0:
            x = denoised
            continue
        k = min(len(slopes), n - i) if n < 15 else len(slopes)
        for c, d in zip(deis_coefficients(sig, i, k), slopes[:k], strict=True):
            x = x + c * d
    return x


# Adams-Bashforth weights for equal steps, newest slope first (orders 1-4).
_AB_WEIGHTS = ((1.0,), (3 / 2, -1 / 2), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


def ipndm(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    weights: str = "fixed",
    afs: str = "off",
) -> torch.Tensor:
    r"""iPNDM: fourth-order Adams-Bashforth on the probability-flow ODE, warmed up with orders 1-3.

    Zhang & Chen 2023 (DEIS), their improvement of Liu et al. 2022's PNDM, in the form diff-sampler (Zhou et al.
    2024) compares: the slopes $d = \epsilon$ are combined with the equal-step weights
    $(55 d_i - 59 d_{i-1} + 37 d_{i-2} - 9 d_{i-3})/24$ (orders 1-3 first: $d_i$, $(3d_i - d_{i-1})/2$,
    $(23 d_i - 16 d_{i-1} + 5 d_{i-2})/12$) even where the grid's steps are not equal:

    $$x_{i+1} = x_i + (\sigma_{i+1} - \sigma_i)\sum_j w_j\,d_{i-j}$$

    `weights="variable"` (`iPNDM_v`) takes the exact weights for the grid's unequal steps instead: the Adams-Bashforth
    interpolant in sigma, which is the LMS sampler's (`lms_coefficients`). Every step, the last included, uses
    the formula; one call per step.

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer.
    """
    if weights not in ("fixed", "variable"):
        raise BadInputError("iPNDM's weights must be fixed or variable.")
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    slopes: list[torch.Tensor] = []
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        slopes = [(x - denoised) / s, *slopes][:4]
        if weights == "fixed":
            coeffs = [(s_next - s) * w for w in _AB_WEIGHTS[len(slopes) - 1]]
        else:
            coeffs = lms_coefficients(sig, i, len(slopes))
        for c, d in zip(coeffs, slopes, strict=True):
            x = x + c * d
    return x


def dpmpp_3m(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    eta: float = 0.0,
    d2_term: str = "published",
    noise_until: int | None = None,
    afs: str = "off",
) -> torch.Tensor:
    r"""DPM-Solver++(3M): the third-order multistep solver in the data prediction; with eta > 0, its SDE form.

    Lu et al. 2022 ("DPM-Solver++") in k-diffusion's third-order multistep form (Crowson). With
    $h = \log(\sigma/\sigma')$, $\hat h = (1 + \eta)h$, the last three estimates' divided differences in units of
    h ($D'$, $D''$ from $r_0 = h_{i-1}/h$, $r_1 = h_{i-2}/h$) and $\varphi_2 = (e^{-\hat h} - 1)/\hat h + 1$,
    $\varphi_3 = \varphi_2/\hat h - 1/2$:

    $$\begin{aligned} x' &= e^{-\hat h}x + (1 - e^{-\hat h})D_i
    + \varphi_2 D' - \varphi_3 D'' \\ &\quad + \sigma'\sqrt{1 - e^{-2\eta h}}\,z \end{aligned}$$

    eta = 0 (the default) is the deterministic DPM-Solver++(3M); eta = 1 is k-diffusion's `sample_dpmpp_3m_sde`
    (here on the Atlas's noise sources, the Brownian path among them).

    The published weight of $D''$ is half of what the Taylor expansion asks: $D''$ as built is
    $\tfrac{h^2}{2}\,d^2D/d\lambda^2$, and the exact integral of the quadratic term is
    $-h^2\varphi_3\,d^2D/d\lambda^2$. So the published solver (diffusers' order-3 DPMSolverMultistepScheduler,
    k-diffusion) converges at second order, measured on the exact Gaussian ODE (`tests/diffusion/test_samplers.py`);
    `d2_term="taylor"` doubles the weight and converges at third order. Second order on the second step, first on
    the first; the step to sigma = 0 is D itself. One call per step.

    `afs="on"` (off by default) is the analytic first step of Zhou et al. 2024 (`analytic_first_step`): at the top of
    the grid the state in the model's VP scale, $x/\sqrt{1 + \sigma^2}$, is all but pure noise, so it is taken as the
    noise estimate and $D_0 = x - \sigma x/\sqrt{1 + \sigma^2}$ stands in for the first model call: one call fewer
    (at any eta: it replaces that step's D, not its fresh noise).
    """
    sig = sigmas.tolist()
    afs_on = _analytic_first(afs, len(sig) - 1)
    past: list[torch.Tensor] = []  # D_{i-1}, D_{i-2}
    steps: list[float] = []  # h_{i-1}, h_{i-2}
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        denoised = analytic_first_step(x, s) if i == 0 and afs_on else denoiser(x, _sigma_vec(x, s))
        _report(callback, i, s, s_next, x, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s / s_next)
        eta_i = eta if _noisy(i, noise_until) else 0.0
        hat = (1 + eta_i) * h
        x = math.exp(-hat) * x - math.expm1(-hat) * denoised  # e^{-h} = sigma' / sigma
        phi_2 = math.expm1(-hat) / hat + 1
        if len(past) == 2:
            r0, r1 = steps[0] / h, steps[1] / h
            first, second = (denoised - past[0]) / r0, (past[0] - past[1]) / r1
            d1 = first + (first - second) * r0 / (r0 + r1)
            d2 = (first - second) / (r0 + r1)
            x = x + phi_2 * d1 - (2.0 if d2_term == "taylor" else 1.0) * (phi_2 / hat - 0.5) * d2
        elif past:
            x = x + phi_2 * (denoised - past[0]) / (steps[0] / h)
        if eta_i > 0:
            x = x + s_next * math.sqrt(-math.expm1(-2 * eta_i * h)) * randn_like(x, generator, s, s_next)
        past, steps = [denoised, *past][:2], [h, *steps][:2]
    return x


def edm(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    churn: float = 10.0,
    s_tmin: float = 0.05,
    s_tmax: float = 50.0,
    s_noise: float = 1.003,
    noise_until: int | None = None,
) -> torch.Tensor:
    r"""EDM's stochastic sampler: raise the noise a little ("churn"), then take a Heun step back down.

    Karras et al. 2022 (EDM), Algorithm 2. With $\gamma = \min(S_{churn}/N, \sqrt2 - 1)$ for
    $\sigma \in [S_{tmin}, S_{tmax}]$ (else 0):

    $$\begin{aligned} \hat\sigma &= (1 + \gamma)\sigma \\ \hat x &= x + \sqrt{\hat\sigma^2 - \sigma^2}\,S_{noise}\,z
    \end{aligned}$$

    then Heun from $(\hat x, \hat\sigma)$ to $\sigma'$. churn = 0 is plain Heun.
    """
    sig = sigmas.tolist()
    n = len(sig) - 1
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        # Stage 1: how far to raise the noise, gamma_i (only inside [S_tmin, S_tmax], and capped at sqrt(2) - 1).
        in_range = s_tmin <= s <= s_tmax and _noisy(i, noise_until)
        gamma = min(churn / n, math.sqrt(2) - 1) if in_range else 0.0
        # Stage 2: go up from sigma_i to sigma_hat = (1 + gamma) sigma_i with fresh noise of variance
        # sigma_hat^2 - sigma_i^2 (times S_noise^2), so x_hat is a sample at noise level sigma_hat.
        s_hat = s * (1 + gamma)
        if gamma > 0:
            x = x + math.sqrt(s_hat**2 - s**2) * s_noise * randn_like(x, generator, s, s_next)
        # Stage 3: an Euler step of the probability-flow ODE from sigma_hat down to sigma_{i+1}.
        denoised = denoiser(x, _sigma_vec(x, s_hat))
        _report(callback, i, s_hat, s_next, x, denoised)
        d = (x - denoised) / s_hat
        x_euler = x + (s_next - s_hat) * d
        if s_next == 0:  # the last step stays first order: the slope at sigma = 0 is undefined
            x = x_euler
            continue
        # Stage 4: Heun's correction, averaging the slope at both ends of the step.
        d_next = (x_euler - denoiser(x_euler, _sigma_vec(x, s_next))) / s_next
        x = x + (s_next - s_hat) * (d + d_next) / 2
    return x


@dataclass(frozen=True, kw_only=True)
class Option:
    """A sampler option, typed, so that the UI can offer it and `sample` can check it.

    kind is int or float (a number in [low, high]; `high` None means unbounded) or str (one of `choices`).
    A default of None means "off" (noise_until). `name` is the keyword the sampler takes, `label` what a page
    calls it."""

    name: str
    label: str
    kind: type
    default: float | str | None
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value: object, owner: str) -> float | str | None:
        """`value` as this option's type, or BadInputError with a sentence naming the sampler and the range."""
        if value is None and self.default is None:
            return None
        if self.kind is str:
            if value not in self.choices:
                raise BadInputError(f"{owner}'s {self.name} must be one of {', '.join(self.choices)} (got {value!r}).")
            return str(value)
        return parse_number(value, f"{owner}'s {self.name}", self.low, self.high, integer=self.kind is int)


# Every stochastic sampler takes it (see the module docstring).
NOISE_UNTIL = Option(
    name="noise_until",
    label="Last noisy step",
    kind=int,
    default=None,
    low=0,
    help="From this step on, no fresh noise: the sampler takes its deterministic step.",
)


@dataclass(frozen=True, kw_only=True)
class SamplerSpec:
    name: str
    fn: Callable[..., torch.Tensor]
    title: str
    order: int  # convergence order of the deterministic solver (an ancestral step is first order in its noise)
    stochastic: bool  # can inject fresh noise (then it also takes noise_until)
    paper: str
    calls_per_step: int  # denoiser calls per step, except the last step (always 1)
    options: tuple[Option, ...] = ()
    noise_scale: str | None = None  # the option that scales the fresh noise (0: none); None: always noisy
    # False: not a solver of the diffusion ODE or SDE; it takes D to be the ODE's whole solution (a consistency
    # model's), so with an ordinary denoiser it converges to nothing as steps grow and has no order to measure
    integrates: bool = True

    def nfe(self, steps: int, options: Mapping[str, object] | None = None) -> int:
        """Denoiser evaluations for `steps` steps ending at sigma = 0 with these options: one fewer where the
        analytic first step (`AFS`) stands in for the first call."""
        calls = self.calls_per_step * (steps - 1) + 1
        return calls - 1 if self.analytic_first(steps, options) else calls

    def analytic_first(self, steps: int, options: Mapping[str, object] | None = None) -> bool:
        """Whether a run of `steps` steps with these options takes its first D in closed form (`AFS`)."""
        return AFS in self.options and _analytic_first(str((options or {}).get(AFS.name, AFS.default)), steps)

    @property
    def doc(self) -> str:
        return self.fn.__doc__ or ""

    @property
    def accepts(self) -> tuple[Option, ...]:
        """Every option `sample` takes for this sampler."""
        return (*self.options, NOISE_UNTIL) if self.stochastic else self.options

    def parse_options(self, options: Mapping[str, object]) -> dict[str, float | str | None]:
        """The options checked and typed (unknown names, wrong types and out-of-range values refused)."""
        known = {o.name: o for o in self.accepts}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise BadInputError(f"{self.title} has no option {', '.join(unknown)}.")
        return {name: known[name].parse(value, self.title) for name, value in options.items()}

    def injects_noise(self, options: Mapping[str, object] | None = None) -> bool:
        """Whether a run with these options draws fresh noise (DDIM at eta = 0, for one, does not)."""
        if not self.stochastic:
            return False
        if self.noise_scale is None:
            return True
        option = next(o for o in self.options if o.name == self.noise_scale)
        return float((options or {}).get(self.noise_scale, option.default)) > 0


# The multistep solvers take it (the first step's D in closed form: `analytic_first_step`).
AFS = Option(
    name="afs",
    label="Analytic first step (AFS)",
    kind=str,
    default="off",
    choices=("off", "on"),
    help="On: the first step takes the noise as the state itself in the model's scale, x / √(1 + σ²), instead of "
    "calling the model (Zhou et al. 2024), one call fewer; sound only where the grid starts at a large σ.",
)


def _eta(default: float, help: str) -> Option:
    return Option(name="eta", label="Eta (η)", kind=float, default=default, low=0.0, high=1.0, help=help)


def _order(default: int, high: int, help: str) -> Option:
    return Option(name="order", label="Order", kind=int, default=default, low=1, high=high, help=help)


_ANCESTRAL_ETA = _eta(1.0, "Share of each step's noise that is fresh: 0 deterministic, 1 ancestral.")

SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        SamplerSpec(
            name="ddpm",
            fn=ddpm,
            title="DDPM (ancestral)",
            order=1,
            stochastic=True,
            paper="Ho et al. 2020",
            calls_per_step=1,
            options=(
                Option(
                    name="variance",
                    label="Variance",
                    kind=str,
                    default="small",
                    choices=("small", "large"),
                    help="The variance of each step's fresh noise. Small: the true posterior's, "
                    "β̃ₜ = βₜ (1 − ᾱₜ₋₁) / (1 − ᾱₜ), DDPM's usual choice. Large: βₜ itself, the most noise a "
                    "step can take. Ho et al. found both give good samples.",
                ),
            ),
        ),
        SamplerSpec(
            name="ddim",
            fn=ddim,
            title="DDIM",
            order=1,
            stochastic=True,
            paper="Song et al. 2021",
            calls_per_step=1,
            options=(
                _eta(0.0, "0: deterministic DDIM; 1: DDPM's posterior noise."),
                Option(
                    name="direction",
                    label="Step along",
                    kind=str,
                    default="estimate",
                    choices=("estimate", "model"),
                    help="Where x₀ is clipped: the noise implied by the clipped x₀ (estimate), or the model's own "
                    "noise prediction (model), as diffusers' DDIMScheduler does. The same without clipping.",
                ),
            ),
            noise_scale="eta",
        ),
        SamplerSpec(
            name="euler",
            fn=euler,
            title="Euler",
            order=1,
            stochastic=False,
            paper="Karras et al. 2022",
            calls_per_step=1,
        ),
        SamplerSpec(
            name="euler_ancestral",
            fn=euler_ancestral,
            title="Euler ancestral",
            order=1,
            stochastic=True,
            paper="Crowson 2022 (k-diffusion)",
            calls_per_step=1,
            options=(_ANCESTRAL_ETA,),
            noise_scale="eta",
        ),
        SamplerSpec(
            name="consistency",
            fn=consistency,
            title="Consistency (multistep)",
            order=1,
            stochastic=True,
            paper="Song et al. 2023",
            calls_per_step=1,
            integrates=False,
        ),
        SamplerSpec(
            name="heun", fn=heun, title="Heun", order=2, stochastic=False, paper="Karras et al. 2022", calls_per_step=2
        ),
        SamplerSpec(
            name="lms",
            fn=lms,
            title="LMS (linear multistep)",
            order=4,
            stochastic=False,
            paper="Karras et al. 2022; Crowson 2022",
            calls_per_step=1,
            options=(_order(4, 4, "How many past slopes to combine."), AFS),
        ),
        SamplerSpec(
            name="dpm_2",
            fn=dpm_2,
            title="DPM-Solver-2",
            order=2,
            stochastic=False,
            paper="Lu et al. 2022",
            calls_per_step=2,
        ),
        SamplerSpec(
            name="dpmpp_2m",
            fn=dpmpp_2m,
            title="DPM-Solver++(2M)",
            order=2,
            stochastic=False,
            paper="Lu et al. 2022 (DPM-Solver++)",
            calls_per_step=1,
            options=(AFS,),
        ),
        SamplerSpec(
            name="dpmpp_2s_ancestral",
            fn=dpmpp_2s_ancestral,
            title="DPM-Solver++(2S) ancestral",
            order=2,
            stochastic=True,
            paper="Lu et al. 2022 (DPM-Solver++)",
            calls_per_step=2,
            options=(_ANCESTRAL_ETA,),
            noise_scale="eta",
        ),
        SamplerSpec(
            name="dpmpp_2m_sde",
            fn=dpmpp_2m_sde,
            title="DPM-Solver++(2M) SDE",
            order=2,
            stochastic=True,
            paper="Lu et al. 2022 (DPM-Solver++)",
            calls_per_step=1,
            options=(_ANCESTRAL_ETA,),
            noise_scale="eta",
        ),
        SamplerSpec(
            name="dpmpp_3m",
            fn=dpmpp_3m,
            title="DPM-Solver++(3M) / SDE",
            order=2,  # as published (the default d2_term); 3 with d2_term="taylor" (see its docstring)
            stochastic=True,
            paper="Lu et al. 2022 (DPM-Solver++); Crowson (k-diffusion)",
            calls_per_step=1,
            options=(
                _eta(0.0, "0: the deterministic DPM-Solver++(3M); above 0, its SDE form (1: k-diffusion's)."),
                Option(
                    name="d2_term",
                    label="D'' weight",
                    kind=str,
                    default="published",
                    choices=("published", "taylor"),
                    help="published: as the paper, diffusers and k-diffusion (it converges at second order); "
                    "taylor: twice that, the Taylor coefficient (third order). See the maths below.",
                ),
                AFS,
            ),
            noise_scale="eta",
        ),
        SamplerSpec(
            name="unipc",
            fn=unipc,
            title="UniPC",
            order=3,
            stochastic=False,
            paper="Zhao et al. 2023",
            calls_per_step=1,
            options=(
                _order(2, 3, "UniP-p: how many model estimates each step combines (the corrector adds one more)."),
                Option(
                    name="variant",
                    label="B(h)",
                    kind=str,
                    default="bh2",
                    choices=("bh1", "bh2"),
                    help="bh1: B(h) = h, the paper's choice for unconditional sampling at very few steps; "
                    "bh2: B(h) = e^h - 1, for guided sampling (both are diffusers' solver_type).",
                ),
                Option(
                    name="corrector",
                    label="Corrector (UniC)",
                    kind=str,
                    default="on",
                    choices=("on", "off"),
                    help="Off: the predictor alone (UniP), a plain multistep solver.",
                ),
                AFS,
            ),
        ),
        SamplerSpec(
            name="deis",
            fn=deis,
            title="DEIS (tAB)",
            order=3,
            stochastic=False,
            paper="Zhang & Chen 2023",
            calls_per_step=1,
            options=(_order(3, 3, "How many past noise estimates the polynomial goes through (1 is DDIM)."), AFS),
        ),
        SamplerSpec(
            name="ipndm",
            fn=ipndm,
            title="iPNDM",
            order=4,
            stochastic=False,
            paper="Zhang & Chen 2023; Zhou et al. 2024 (diff-sampler)",
            calls_per_step=1,
            options=(
                Option(
                    name="weights",
                    label="Step weights",
                    kind=str,
                    default="fixed",
                    choices=("fixed", "variable"),
                    help="fixed: the equal-step weights whatever the grid (iPNDM); variable: the exact weights for "
                    "the grid's unequal steps (iPNDM_v).",
                ),
                AFS,
            ),
        ),
        SamplerSpec(
            name="edm",
            fn=edm,
            title="EDM stochastic (Heun + churn)",
            order=2,
            stochastic=True,
            paper="Karras et al. 2022",
            calls_per_step=2,
            options=(
                Option(
                    name="churn",
                    label="Churn (S_churn)",
                    kind=float,
                    default=10.0,
                    low=0.0,
                    high=80.0,
                    help="S_churn: how much noise to add back per step, over the whole run.",
                ),
                Option(
                    name="s_noise",
                    label="Noise inflation (S_noise)",
                    kind=float,
                    default=1.003,
                    low=1.0,
                    high=1.1,
                    help="S_noise: inflate the added noise slightly.",
                ),
            ),
            noise_scale="churn",
        ),
    )
}


def get_sampler(name: str) -> SamplerSpec:
    spec = SAMPLERS.get(name)
    if spec is None:
        raise BadInputError(f"Unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}.")
    return spec


def sample(
    name: str,
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: Generator = None,
    callback: Callback = None,
    **options: float | str,
) -> torch.Tensor:
    """Run the named sampler under inference mode, checking the grid and options first."""
    spec = get_sampler(name)
    # A grid may stop above 0 (diffusers' set_alpha_to_one = false): its last state is x at that noise level.
    if sigmas.ndim != 1 or len(sigmas) < 2 or float(sigmas[-1]) < 0 or bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise BadInputError("The sigma grid must be strictly decreasing and end in 0 (or above).")
    parsed = spec.parse_options(options)
    with torch.inference_mode():
        return spec.fn(denoiser, x, sigmas, generator=generator, callback=callback, **parsed)
