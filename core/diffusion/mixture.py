"""A Gaussian mixture: a data law whose every noisy quantity is known in closed form (Ground truth, the tests'
oracles, the toy lab's mixture sets). Its `denoise` is the exact denoiser in sigma space."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.errors import BadInputError


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
    def build(cls, mix: GaussianMixture, sigma: torch.Tensor) -> _MixtureTerms:
        """In coordinates centred on the mixture's mean (`mix._mu` = mu_k - centre), so that the expansion does
        not cancel away the digits of mixtures far from the origin."""
        s2, mu = mix.stds**2, mix._mu
        var = s2 + sigma.reshape(-1, 1, 1) ** 2
        inv = 1 / var
        gain = s2 * inv
        const = (mu**2 * inv + torch.log(2 * math.pi * var)).sum(-1) - 2 * mix.weights.log()
        return cls(quad=torch.cat([inv, -2 * mu * inv], -1), const=const, mean=torch.cat([mu - mu * gain, gain], -1))


class GaussianMixture:
    """A Gaussian mixture law in any dimension, and everything about it that is known in closed form once it is
    blurred by noise sigma: its log density, score, responsibilities, draws, and its exact denoiser
    (`denoise`), the ground truth every sampler and model is measured against.

    Components k have mean mu_k [D], standard deviations s_k (a scalar per component, or per dimension)
    and weight pi_k. Blurred by noise sigma, component k becomes N(mu_k, s_k^2 + sigma^2).
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

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """The exact denoiser E[x_0 | x_0 + sigma eps = x] (a `Denoiser`: pass `mixture.denoise` to a sampler):
            D(x, sigma) = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)),
            r_k(x) proportional to pi_k N(x; mu_k, s_k^2 + sigma^2).
        Inputs of shape [B, ...] are flattened to [B, D]. class_labels (optional) pins each sample to one
        component (label == K means "any component"), which makes a class-conditional ground truth."""
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
        return (self.denoise(x, sigma) - x) / sigma.reshape(-1, *(1,) * (x.ndim - 1)) ** 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws from the mixture: points [n, D] (float64) and their component labels [n]."""
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[labels] + self.stds[labels] * z, labels


class ClassMixture:
    """A law of labelled data: class c is the Gaussian mixture `classes[c]`, drawn with weight pi_c. Its exact
    class-conditional denoiser is class c's own; label C (= the number of classes, `null_label`) asks for the
    whole law, the unconditional denoiser a model trained with a null label learns. So it is guided exactly
    as a trained class-conditional model is (core/diffusion/guidance.py), with every density known."""

    def __init__(self, classes: list[GaussianMixture], weights: torch.Tensor | None = None) -> None:
        if not classes or len({c.dim for c in classes}) != 1:
            raise BadInputError("A class mixture needs at least one class, all of one dimension.")
        w = torch.ones(len(classes), dtype=torch.float64) if weights is None else torch.as_tensor(weights).double()
        if len(w) != len(classes) or bool((w <= 0).any()) or not bool(w.isfinite().all()):
            raise BadInputError("A class mixture needs one positive weight per class.")
        self.classes, self.class_weights = classes, w / w.sum()
        self.whole = GaussianMixture(
            torch.cat([c.means for c in classes]),
            torch.cat([c.stds for c in classes]),
            torch.cat([pi * c.weights for pi, c in zip(self.class_weights, classes, strict=True)]),
        )

    @property
    def null_label(self) -> int:
        return len(self.classes)

    @property
    def dim(self) -> int:
        return self.whole.dim

    def law(self, label: int | None) -> GaussianMixture:
        """Class `label`'s mixture; None or the null label: the whole law."""
        return self.whole if label is None or label == self.null_label else self.classes[label]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """The exact denoiser of each sample's class (class_labels [B]; the null label or None: the whole law)."""
        if class_labels is None:
            return self.whole.denoise(x, sigma)
        out = torch.empty_like(x)
        sigma = sigma.expand(len(x)) if sigma.ndim == 0 or len(sigma) == 1 else sigma
        for label in class_labels.unique().tolist():
            rows = class_labels == label
            out[rows] = self.law(int(label)).denoise(x[rows], sigma[rows])
        return out

    def log_prob(self, x: torch.Tensor, label: int | None = None, sigma: float = 0.0) -> torch.Tensor:
        """log p_sigma(x | c) (label None: log p_sigma(x)); x [B, D] -> [B]."""
        return self.law(label).log_prob(x, sigma)

    def sample(self, n: int, label: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws of class `label` (None: of the whole law), [n, D] float64."""
        return self.law(label).sample(n, generator)[0]

    def blurred(self, spread: float) -> ClassMixture:
        """The same classes convolved with N(0, spread^2 I): each component's std becomes sqrt(s^2 + spread^2).
        Its exact denoiser is a worse model of this law, one whose every class is too wide (autoguidance's
        weaker model, in closed form)."""
        if not (math.isfinite(spread) and spread >= 0):
            raise BadInputError("The blur must be a finite spread of 0 or more.")
        wide = [GaussianMixture(c.means, (c.stds**2 + spread**2).sqrt(), c.weights) for c in self.classes]
        return ClassMixture(wide, self.class_weights)
