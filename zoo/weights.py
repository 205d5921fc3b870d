"""Reading weights without unpickling: safetensors, or torch.load(weights_only=True) for third-party files.

Every failure becomes a CheckpointError that names the file and says what is wrong with it: damaged
(truncated, not the format it claims), not a plain state dict (Python objects inside), or not fitting
the architecture (missing, unexpected or wrong-shaped tensors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from zoo.errors import CheckpointError


def read_state_dict(path: Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors stored in `path` (CPU). With `key`, the state dict nested under that key (e.g. "model")."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckpointError(f"{path.name} is missing or empty.")
    if path.suffix == ".safetensors":
        try:
            obj: object = load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own error types for every kind of damage
            raise CheckpointError(f"{path.name} is damaged or not a safetensors file ({e}).") from e
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
                raise CheckpointError(
                    f"{path.name} is not a plain state dict: it holds Python objects, and loading those could run "
                    "code, so it was not loaded."
                ) from e
            raise CheckpointError(f"{path.name} is damaged or truncated ({e.__class__.__name__}).") from e
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"{path.name} has no {key!r} entry (it holds: {keys}).")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} is not a state dict (a mapping of names to tensors).")
    return {str(k): v for k, v in obj.items()}


def stored_size(path: Path) -> int | None:
    """Numbers stored in a safetensors file, from its header alone (every tensor's shape is stated there);
    None for other formats or a header that cannot be read (read_state_dict then says what is wrong)."""
    if Path(path).suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 (not a dict)
    except Exception:  # safetensors raises its own error types for every kind of damage
        return None


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Copy `state` into `module` after checking that every name and shape matches, so that a checkpoint
    for another architecture is refused with a clear message instead of a partial load."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {list(state[k].shape)}, model {list(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        example = (wrong or [f"missing {k}" for k in missing] or [f"unexpected {k}" for k in unexpected])[0]
        raise CheckpointError(
            f"{what} does not fit its architecture: {len(missing)} missing, {len(unexpected)} unexpected and "
            f"{len(wrong)} wrong-shaped tensors (e.g. {example})."
        )
    module.load_state_dict(dict(state), strict=True)
