"""What the Inversion page's three tabs share: the sampler box (deterministic samplers only), the line with the
round trip's errors, and the table of the inverted noise's moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.diffusion.inversion import INVERTIBLE
from core.diffusion.samplers import SAMPLERS
from core.labs import inversion as inv

LADDER_SAMPLERS = ("ddim", "heun", "dpmpp_2m")  # the latent plane's ladder, and the digits' measurement's default


def sampler_box(key: str, container=st, default: str = "dpmpp_2m") -> str:
    return container.selectbox(
        "Sampler",
        INVERTIBLE,
        index=INVERTIBLE.index(default),
        key=key,
        format_func=lambda n: SAMPLERS[n].title,
        help="Deterministic samplers only: one with fresh noise has no inverse.",
    )


def moments_table(eps: np.ndarray, names: list[str], key: str) -> None:
    """The moments of each coordinate of inverted noises eps [n, d] (column k named names[k])."""
    rows = [{"": name, **inv.noise_moments(eps[:, k])} for k, name in enumerate(names)]
    st.dataframe(pd.DataFrame(rows).round(3), hide_index=True, width="stretch", key=key)


def errors_line(result: inv.Inverted, units: str) -> None:
    st.markdown(
        f"RMS round-trip error **{float(result.ode_error.mean()):.3g}** at sigma_min (the two ODE solves), "
        f"**{float(result.error.mean()):.3g}** after sampling's last step to 0 ({units}); "
        f"{result.seconds:.2f} s both ways."
    )
