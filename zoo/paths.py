"""The zoo's side of core/paths.py (allowed roots, typed paths, files opened once and checked): a model's file
that cannot be read is a CheckpointError, and a handle can be named by path for readers that take only a path."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from core import paths
from core.errors import UnreadableFileError
from zoo.errors import CheckpointError


def open_inside(path: Path, roots: Sequence[Path] | None) -> BinaryIO:
    """`core.paths.open_inside(path, roots)`: a file of a model, opened once and checked; one that cannot be read
    (not there, not a regular file, a link put in its place) is a CheckpointError with the same sentence, one
    outside the roots a BadInputError."""
    try:
        return paths.open_inside(path, roots)
    except UnreadableFileError as e:
        raise CheckpointError(str(e)) from None


def fd_path(handle: BinaryIO) -> str:
    """A path that opens the very file `handle` holds (not whatever its name points to now): for readers
    that take only a path (safetensors). Linux's /proc/self/fd, else /dev/fd (macOS)."""
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    return f"{folder}/{handle.fileno()}"
