"""The home page's tables: the engine's samplers and schedules, the zoo, and the models this server holds.
Plain data (pandas), no Streamlit calls; every column holds one type, an absent value is ABSENT or <NA>."""

from __future__ import annotations

import pandas as pd

from core.diffusion.samplers import SAMPLERS, SamplerSpec
from core.diffusion.schedules import SCHEDULE_KINDS
from core.models.fingerprint import weights_fingerprint
from ui.common.tables import ABSENT
from zoo.loaders import LoadedModel, availability
from zoo.registry import Registry


def _fresh_noise(spec: SamplerSpec) -> str:
    if not spec.stochastic:
        return "never"
    return "every step" if spec.noise_scale is None else f"when {spec.noise_scale} > 0"


def sampler_table(steps: int = 20) -> pd.DataFrame:
    """One row per sampler: its order, when it injects noise, its cost at `steps` steps, its paper."""
    return pd.DataFrame(
        [
            {
                "Sampler": s.title,
                "Key": s.name,
                "Order": s.order,
                "Fresh noise": _fresh_noise(s),
                f"NFE at {steps} steps": s.nfe(steps),
                "Options": ", ".join(o.name for o in s.options) or ABSENT,
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
                "Default beta range": ABSENT if k.beta_start is None else f"{k.beta_start:g} to {k.beta_end:g}",
            }
            for k in SCHEDULE_KINDS.values()
        ]
    )


def model_table(registry: Registry) -> pd.DataFrame:
    """One row per zoo model; Classes is an integer column, <NA> for unconditional models."""
    models = list(registry.models.values())
    table = pd.DataFrame(
        {
            "Model": [m.title for m in models],
            "Key": [m.name for m in models],
            "Family": [m.family for m in models],
            "Shape": ["x".join(map(str, m.sample_shape)) or ABSENT for m in models],
            "Classes": pd.array([m.num_classes or None for m in models], dtype="Int64"),
            "Prediction": [m.prediction_type or ABSENT for m in models],
            "Source": [m.source for m in models],
            "Status": [availability(m) + (" (GPU recommended)" if m.gpu_recommended else "") for m in models],
        }
    )
    return table


def loaded_table(loaded: dict[str, LoadedModel]) -> pd.DataFrame:
    """One row per model in the server's cache: parameters, load time and the weights' fingerprint."""
    rows = [
        {
            "Model": key,
            "Parameters": f"{m.param_count:,}",
            "Loaded in s": round(m.load_seconds, 2),
            "Weights SHA-256": weights_fingerprint(m.module),
        }
        for key, m in loaded.items()
    ]
    return pd.DataFrame(rows).set_index("Model")
