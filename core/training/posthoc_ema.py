"""Post-hoc EMA (Karras et al. 2024, "Analyzing and Improving the Training Dynamics of Diffusion Models", EDM2):
choose the EMA length after training, from two streams of snapshots.

A power-function EMA with exponent gamma updates, after training step t = 1, 2, ..., as
    ema <- beta_t ema + (1 - beta_t) theta_t,    beta_t = (1 - 1/t)^(gamma + 1).
Unrolled, the weight of theta_tau (tau <= t) is (tau^(gamma+1) - (tau-1)^(gamma+1)) / t^(gamma+1): exactly the
integral over (tau - 1, tau] of the profile p_t(s) = (gamma + 1) s^gamma / t^(gamma+1) on [0, t]. So the EMA is the
average of the piecewise-constant weight path under p_t, with no approximation. Its length is the profile's
standard deviation relative to t, sigma_rel = sqrt((gamma + 1) / ((gamma + 2)^2 (gamma + 3))), the same at every t
(so an EMA of sigma_rel 0.1 always averages over about the last tenth of training).

Training keeps two streams (sigma_rel 0.05 and 0.10 by default) and saves both at every checkpoint. The EMA of any
other length r at step T is then approximated by a combination sum_i c_i snapshot_i whose profile sum_i c_i p_i is
closest in L2 to the wanted p_T (least squares over the snapshots' closed-form inner products, `coefficients`, with
sum_i c_i = 1 so that weights training never moved come back unchanged);
because each snapshot is exactly its profile applied to the weight path, the same c_i give the weights.
`profile_error` says how well the profiles fit (0: the reconstruction is exact for any weight path).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.errors import BadInputError

STREAMS = (0.05, 0.10)  # EDM2's two streams
MAX_SIGMA_REL = 1 / math.sqrt(12)  # gamma = 0, the uniform average of everything so far: the longest there is
FILE_PREFIX = "phema-"  # a checkpoint's snapshot of a stream: phema-0.050.safetensors


def gamma_of(sigma_rel: float) -> float:
    """The exponent gamma >= 0 of a power-function EMA of relative length `sigma_rel` in (0, 1/sqrt(12)]."""
    if not 0 < sigma_rel <= MAX_SIGMA_REL + 1e-12:
        raise BadInputError(f"An EMA length (sigma_rel) lies in (0, {MAX_SIGMA_REL:.4f}]; got {sigma_rel:g}.")
    lo, hi = 0.0, 1e9  # sigma_rel falls as gamma grows from 0; bisection on log(1 + gamma)
    for _ in range(200):
        mid = math.expm1((math.log1p(lo) + math.log1p(hi)) / 2)
        if sigma_rel_of(mid) > sigma_rel:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def sigma_rel_of(gamma: float) -> float:
    """The relative length of the power-function EMA with exponent `gamma` (see the module docstring)."""
    return math.sqrt((gamma + 1) / ((gamma + 2) ** 2 * (gamma + 3)))


def file_name(sigma_rel: float) -> str:
    return f"{FILE_PREFIX}{sigma_rel:.3f}.safetensors"


def beta(step: int, gamma: float) -> float:
    """The decay after training step `step` (1, 2, ...): 0 at the first, so the EMA starts at the first weights."""
    return (1 - 1 / step) ** (gamma + 1)


def profile_products(t_a: np.ndarray, g_a: np.ndarray, t_b: np.ndarray, g_b: np.ndarray) -> np.ndarray:
    """<p_a, p_b> = integral of the two normalised profiles' product (broadcast over the arrays):
    (g_a + 1)(g_b + 1) m^(g_a + g_b + 1) / ((g_a + g_b + 1) t_a^(g_a + 1) t_b^(g_b + 1)), m = min(t_a, t_b);
    in logs, as t^gamma overflows."""
    t_a, g_a, t_b, g_b = (np.asarray(v, dtype=np.float64) for v in (t_a, g_a, t_b, g_b))
    m = np.minimum(t_a, t_b)
    log = (
        np.log1p(g_a)
        + np.log1p(g_b)
        - np.log(g_a + g_b + 1)
        + (g_a + g_b + 1) * np.log(m)
        - (g_a + 1) * np.log(t_a)
        - (g_b + 1) * np.log(t_b)
    )
    return np.exp(log)


@dataclass(frozen=True)
class Fit:
    """The combination of snapshots that reconstructs one EMA: a coefficient per snapshot, and the profile's
    relative L2 error ||sum c_i p_i - p|| / ||p||."""

    coefficients: np.ndarray
    profile_error: float


def coefficients(snapshots: Sequence[tuple[int, float]], step: int, sigma_rel: float) -> Fit:
    """How to combine snapshots, each (step, gamma), into the EMA of length `sigma_rel` at `step` (least squares
    on the profiles; only snapshots taken at or before `step` can carry weight, the others get 0)."""
    if step < 1:
        raise BadInputError("An EMA is reconstructed at a step of 1 or more.")
    gamma = gamma_of(sigma_rel)
    usable = [k for k, (t, _) in enumerate(snapshots) if 1 <= t <= step]
    if not usable:
        raise BadInputError(f"No post-hoc EMA snapshot was taken at or before step {step:,}.")
    t = np.array([snapshots[k][0] for k in usable], dtype=np.float64)
    g = np.array([snapshots[k][1] for k in usable], dtype=np.float64)
    gram = profile_products(t[:, None], g[:, None], t[None, :], g[None, :])
    target = profile_products(t, g, step, gamma)
    # Least squares with the coefficients summing to 1 (the rebuilt profile integrates to 1, so weights that never
    # move are rebuilt exactly): the normal equations bordered by that constraint (a Lagrange multiplier), rescaled
    # to a unit diagonal first, as the Gram matrix of many similar profiles is ill-conditioned.
    n = len(usable)
    scale = 1 / np.sqrt(np.diag(gram))
    system = np.zeros((n + 1, n + 1))
    system[:n, :n] = gram * scale[:, None] * scale[None, :]
    system[:n, n] = system[n, :n] = scale
    solved, *_ = np.linalg.lstsq(system, np.append(target * scale, 1.0), rcond=1e-13)
    c = solved[:n] * scale
    norm = float(profile_products(step, gamma, step, gamma))
    residual = max(norm - 2 * c @ target + c @ gram @ c, 0.0)
    full = np.zeros(len(snapshots))
    full[usable] = c
    return Fit(full, math.sqrt(residual / norm))


def combine(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """sum_i w_i states_i, tensor by tensor, in float64 (the coefficients can be large with opposite signs), then
    back to each tensor's own dtype. Snapshots with weight 0 are not read."""
    if not states or len(states) != len(weights):
        raise BadInputError("Give one weight per snapshot.")
    out: dict[str, torch.Tensor] = {}
    for name, first in states[0].items():
        total = torch.zeros(first.shape, dtype=torch.float64)
        for state, w in zip(states, weights, strict=True):
            if w != 0:
                total += float(w) * state[name].to(torch.float64)
        out[name] = total.to(first.dtype)
    return out


class PowerStreams:
    """Power-function EMAs of a module's parameters, one per sigma_rel, updated after every training step (see the
    module docstring). They follow `module.parameters()` in order; `state_of` gives one as the state dict of the
    module or a submodule of it (or of a copy built like it, such as the trainer's EMA copy)."""

    def __init__(self, module: nn.Module, sigma_rels: Sequence[float]) -> None:
        if len(set(sigma_rels)) != len(sigma_rels):
            raise BadInputError("Each post-hoc EMA stream needs its own length.")
        self.sigma_rels = tuple(float(r) for r in sigma_rels)
        self.gammas = tuple(gamma_of(r) for r in self.sigma_rels)
        with torch.no_grad():
            self.streams = [[p.detach().clone() for p in module.parameters()] for _ in self.sigma_rels]

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        """After training step `step` (1, 2, ...), with the module's new parameters."""
        params = [p.detach() for p in module.parameters()]
        for stream, gamma in zip(self.streams, self.gammas, strict=True):
            torch._foreach_lerp_(stream, params, 1 - beta(step, gamma))

    def state_of(self, k: int, owner: nn.Module, module: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Stream k as the state dict of `module` (a submodule of `owner`, or `owner` itself), where `owner` is
        built like the module the streams follow (its parameters in the same order); buffers come from `module`."""
        module = owner if module is None else module
        index = {id(p): i for i, p in enumerate(owner.parameters())}
        state = {name: t.detach().clone() for name, t in module.state_dict(keep_vars=True).items()}
        for name, p in module.named_parameters():
            state[name] = self.streams[k][index[id(p)]].clone()
        return state

    def files(self, step: int, owner: nn.Module, module: nn.Module | None = None) -> dict[str, bytes]:
        """Every stream at `step` as a checkpoint folder's files (`snapshot_file`)."""
        return dict(
            snapshot_file(self.state_of(k, owner, module), length, step) for k, length in enumerate(self.sigma_rels)
        )


def snapshot_file(state: Mapping[str, torch.Tensor], sigma_rel: float, step: int) -> tuple[str, bytes]:
    """A stream's weights at `step` as a checkpoint folder's file: (phema-<sigma_rel>.safetensors, its bytes),
    float32 (the coefficients that combine snapshots can be large, so their rounding would be too), its length,
    exponent and step in the safetensors header."""
    tensors = {n: t.detach().to("cpu", torch.float32).contiguous() for n, t in state.items()}
    meta = {"sigma_rel": repr(sigma_rel), "gamma": repr(gamma_of(sigma_rel)), "step": str(step)}
    return file_name(sigma_rel), safetensors_bytes(tensors, metadata=meta)
