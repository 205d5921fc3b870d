"""Tables that describe the engine (for the home page); plain data, no Streamlit calls."""

from __future__ import annotations

import pandas as pd

from core.samplers import SAMPLERS
from core.schedules import SCHEDULE_KINDS


def sampler_table(steps: int = 20) -> pd.DataFrame:
    """One row per sampler: its order, whether it injects noise, its cost at `steps` steps, its paper."""
    return pd.DataFrame(
        [
            {
                "Sampler": s.title,
                "Key": s.name,
                "Order": s.order,
                "Stochastic": s.stochastic,
                f"NFE at {steps} steps": s.nfe(steps),
                "Options": ", ".join(o.name for o in s.options) or "-",
                "Paper": s.paper,
            }
            for s in SAMPLERS.values()
        ]
    )


def schedule_table() -> pd.DataFrame:
    """One row per beta schedule with its default range."""
    return pd.DataFrame(
        [
            {
                "Schedule": k.title,
                "Key": k.name,
                "Default beta range": "-" if k.beta_start is None else f"{k.beta_start:g} to {k.beta_end:g}",
            }
            for k in SCHEDULE_KINDS.values()
        ]
    )
