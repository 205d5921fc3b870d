"""The controls both sweeps share (MNIST and the exact 2-D mixture): which guidance methods, at which scales,
with which settings, as the series of a sweep (core/labs/guidance/sweep.Series)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.diffusion.guidance import METHODS, Guidance
from core.labs.guidance.sweep import LAMBDAS, SCALES, Series
from ui.common.widgets import guidance_settings

CHOICES = {"cfg": METHODS["cfg"], "interval": "CFG in a σ interval", **{k: v for k, v in METHODS.items() if k != "cfg"}}
SCALE_CHOICES = tuple(sorted({*SCALES, 0.5, 4.0, 12.0}))
LAMBDA_CHOICES = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
INTERVAL_SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.28, 0.5, 1.0, 2.0, 5.42, 10.0, 20.0, 40.0, 80.0)
HELP = (
    "**CFG**: D_u + w (D_c − D_u). **In a σ interval** (Kynkäänniemi et al. 2024): guided only for σ in "
    "(low, high]. **Rescale** (Lin et al. 2024): the guided noise prediction scaled back towards the conditional "
    "one's size, by φ. **APG** (Sadat et al. 2024): the update split into parts parallel and orthogonal to D_c, "
    "the parallel one weighted by η, with momentum β and a norm cap r. **CFG++** (Chung et al. 2024): guided x₀ "
    "at λ ∈ [0, 1], re-noised with the unconditional noise. **Autoguidance** (Karras et al. 2024): the reference "
    "is a weaker model's conditional prediction instead of the unconditional one."
)


@dataclass(frozen=True)
class Plan:
    """What the controls chose: the series, and a sentence where the choice cannot run (else None)."""

    series: tuple[Series, ...]
    problem: str | None = None

    @property
    def scales(self) -> int:
        return sum(len(s.scales) for s in self.series)


def cfgpp_note(plan: Plan, sampler: str) -> None:
    """Under a sampler other than DDIM or Euler, say what CFG++ is there (core/diffusion/guidance.py)."""
    if any(s.guidance.method == "cfg++" for s in plan.series) and sampler not in ("ddim", "euler"):
        st.caption(
            "CFG++ is its paper's update under DDIM and Euler; under this sampler it runs as CFG at the scale "
            "CFG++ gives each step, λ / (1 − σᵢ₊₁/σᵢ)."
        )


def plan_controls(prefix: str, default: list[str]) -> Plan:
    """The methods, their scales and settings (keys start with `prefix`)."""
    a, b = st.columns([3, 2])
    methods = a.multiselect(
        "Methods", list(CHOICES), default=default, format_func=CHOICES.get, key=f"{prefix}-methods", help=HELP
    )
    scales = b.multiselect("Scales w", SCALE_CHOICES, default=list(SCALES), key=f"{prefix}-scales")
    with st.expander("Method settings", expanded=False):
        c, d, e = st.columns(3)
        lo, hi = c.select_slider(
            "Interval: guide only for σ in", INTERVAL_SIGMAS, value=(0.28, 5.42), key=f"{prefix}-interval"
        )
        lambdas = c.multiselect("CFG++ λ", LAMBDA_CHOICES, default=list(LAMBDAS), key=f"{prefix}-lambdas")
        options = guidance_settings(prefix, ["rescale"], d) | guidance_settings(prefix, ["apg"], e)
    scales_t, lambdas_t = tuple(sorted(float(w) for w in scales)), tuple(sorted(float(v) for v in lambdas))
    problem = None
    if "interval" in methods and lo >= hi:
        problem = "The interval is empty (low = high): guidance would never act. Widen it."
        methods = [m for m in methods if m != "interval"]
    phi, eta, beta, cap = (options[k] for k in ("rescale", "eta", "momentum", "threshold"))
    apg_name = f"APG (η {eta:g}, β {beta:g}{f', r {cap:g}' if cap else ''})"
    made = {
        "cfg": lambda: Series("CFG", Guidance(), scales_t),
        "interval": lambda: Series(f"CFG, σ in ({lo:g}, {hi:g}]", Guidance(interval=(float(lo), float(hi))), scales_t),
        "rescale": lambda: Series(
            f"CFG + rescale (φ {phi:g})", Guidance(method="rescale", rescale=float(phi)), scales_t
        ),
        "apg": lambda: Series(
            apg_name, Guidance(method="apg", eta=float(eta), momentum=float(beta), threshold=float(cap)), scales_t
        ),
        "cfg++": lambda: Series("CFG++", Guidance(method="cfg++", scale=0.5), lambdas_t),
        "auto": lambda: Series("Autoguidance", Guidance(method="auto"), scales_t),
    }
    series = tuple(s for s in (made[m]() for m in methods) if s.scales)
    if not series and problem is None:
        problem = "Choose at least one method and one of its scales."
    return Plan(series, problem)
