"""Reading weights without unpickling: safetensors, or torch.load(weights_only=True) for third-party files.

Every failure becomes a CheckpointError that names the file and says what is wrong with it: damaged
(truncated, not the format it claims), not a plain state dict (Python objects inside), or not fitting
the architecture (missing, unexpected or wrong-shaped tensors). Files are read from a handle that
zoo/paths.open_inside opened and checked, never from their path again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from core.limits import max_download_bytes
from zoo.errors import CheckpointError, TooLargeError
from zoo.paths import fd_path, open_inside


def open_weights(path: Path, roots: Sequence[Path] | None) -> BinaryIO:
    """A weights file opened by `open_inside` (checked as opened), refused when larger than this server
    reads (ATLAS_MAX_DOWNLOAD_MB): read it from this handle."""
    handle = open_inside(path, roots)
    size = os.fstat(handle.fileno()).st_size
    if size > max_download_bytes():
        handle.close()
        raise TooLargeError(
            f"{path.name} is {size / 2**20:,.0f} MB, over this server's limit of "
            f"{max_download_bytes() / 2**20:,.0f} MB (ATLAS_MAX_DOWNLOAD_MB)."
        )
    return handle


def read_state_dict(handle: BinaryIO, name: str, key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors stored in the open file `handle` (CPU; `name` is the file's name, for its format and for
    messages). With `key`, the state dict nested under that key (e.g. "model")."""
    if os.fstat(handle.fileno()).st_size == 0:
        raise CheckpointError(f"{name} is empty.")
    if name.endswith(".safetensors"):
        try:
            obj: object = load_file(fd_path(handle), device="cpu")
        except Exception as e:  # safetensors raises its own error types for every kind of damage
            raise CheckpointError(f"{name} is damaged or not a safetensors file ({e}).") from e
    else:
        try:
            obj = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as e:
            if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
                raise CheckpointError(
                    f"{name} is not a plain state dict: it holds Python objects, and loading those could run "
                    "code, so it was not loaded."
                ) from e
            raise CheckpointError(f"{name} is damaged or truncated ({e.__class__.__name__}).") from e
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"{name} has no {key!r} entry (it holds: {keys}).")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{name} is not a state dict (a mapping of names to tensors).")
    return {str(k): v for k, v in obj.items()}


def stored_size(handle: BinaryIO, name: str) -> int | None:
    """Numbers stored in the open safetensors file `handle`, from its header alone (every tensor's shape is
    stated there); None for other formats or a header that cannot be read (read_state_dict then says why)."""
    if not name.endswith(".safetensors"):
        return None
    try:
        with safe_open(fd_path(handle), framework="pt") as f:
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
