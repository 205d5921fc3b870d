"""Local paths a person types (a runs folder, a checkpoint folder or file): accepted only under allowed roots.

On a shared server (Streamlit Community Cloud, a lab's GPU box) the text box is a window onto the server's
disk. So a typed path is resolved (symlinks followed, `..` folded) and accepted only when the result lies
under one of the allowed roots: the runs folder (ATLAS_RUNS, default `runs`) and the folders listed in
ATLAS_ALLOWED_ROOTS (separated by the platform's path separator, ':' on Linux). Anything else, a symlink that
leads out of them included, is refused with a sentence, and nothing outside is listed or read.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import BadInputError

MAX_PATH_CHARS = 1024


def runs_root() -> Path:
    return Path(os.environ.get("ATLAS_RUNS") or "runs")


def allowed_roots() -> list[Path]:
    """The resolved roots a typed path may lie under (in order: the runs folder, then ATLAS_ALLOWED_ROOTS)."""
    extra = [p for p in os.environ.get("ATLAS_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().resolve() for p in [str(runs_root()), *extra]]


def inside_roots(path: Path) -> bool:
    """Whether `path`, resolved (symlinks followed), lies under one of the allowed roots."""
    return any(under(path, root) for root in allowed_roots())


def under(path: Path, root: Path) -> bool:
    """Whether `path`, resolved (symlinks followed), lies in `root` (resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop, or a path the system cannot resolve
        return False


def resolve_allowed(text: str, what: str = "runs") -> Path:
    """The typed path, resolved, if it lies under an allowed root; else BadInputError with a sentence that
    says which folders this app reads `what` from."""
    text = str(text).strip()
    if not text:
        raise BadInputError("Type a folder path.")
    if len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise BadInputError(f"That is not a folder path this app reads (at most {MAX_PATH_CHARS:,} characters).")
    roots = allowed_roots()
    try:
        path = Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as e:
        raise BadInputError(f"That path cannot be resolved ({e.__class__.__name__}).") from None
    if not any(path.is_relative_to(root) for root in roots):
        shown = ", ".join(str(r) for r in roots)
        raise BadInputError(
            f"This app reads {what} only from {shown}. Set ATLAS_ALLOWED_ROOTS on the server to allow other folders."
        )
    return path
