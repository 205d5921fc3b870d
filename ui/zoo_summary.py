"""What the zoo holds and what of it is usable right now; plain data, no Streamlit calls."""

from __future__ import annotations

import pandas as pd

from core.fingerprint import weights_fingerprint
from zoo.hub import cached_files, hub_settings
from zoo.loaders import LoadedModel
from zoo.registry import ModelEntry, Registry


def availability(entry: ModelEntry) -> str:
    """bundled | bundled files missing | cached | needs the Hub (local checks only, never the network)."""
    if entry.path is not None:
        return "bundled" if all((entry.path / f).is_file() for f in entry.files) else "bundled files missing"
    paths = cached_files(str(entry.repo), entry.files, revision=entry.revision)
    return "cached" if all(paths.values()) else "needs the Hub"


def model_table(registry: Registry) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Model": m.title,
                "Key": m.name,
                "Family": m.family,
                "Shape": "x".join(map(str, m.sample_shape)) or "-",
                "Classes": m.num_classes or "-",
                "Prediction": m.prediction_type or "-",
                "Source": m.source,
                "Status": availability(m) + (" (GPU recommended)" if m.gpu_recommended else ""),
            }
            for m in registry.models.values()
        ]
    )


def zoo_status(registry: Registry) -> str:
    """One line for the sidebar: how many models are usable now, and whether the Hub is switched off."""
    states = [availability(m) for m in registry.models.values()]
    usable = sum(s in ("bundled", "cached") for s in states)
    mode = "offline mode" if hub_settings().offline else "Hub on"
    return f"Zoo: {usable} of {len(states)} models ready here · {mode}"


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
