"""Local paths a person names (a runs folder, a checkpoint folder or file), and the files read from them:
accepted only under allowed roots, each file opened once and checked.

On a shared server (Streamlit Community Cloud, a lab's GPU box) the text box is a window onto the server's
disk. So a typed path is resolved (symlinks followed, `..` folded) and accepted only when the result lies
under one of the allowed roots: the runs folder (ATLAS_RUNS, default `runs`) and the folders listed in
ATLAS_ALLOWED_ROOTS (separated by the platform's path separator, ':' on Linux). Anything else, a symlink that
leads out of them included, is refused with a sentence, and nothing outside is listed or read.

A check and a later read of the same path can see different files (a symlink swapped in between), so every
file read from such a folder (the zoo's checkpoints, core/runs' run logs) is opened once by `open_inside`,
which checks the file it opened, and read from that handle. A link inside the roots that leads to another
place inside them is followed (an operator may link runs together); one that leads out is refused. Paths are
shown relative to their root (`shown`), never as the server's absolute paths.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from core.errors import BadInputError, UnreadableFileError
from core.text import plain_label

MAX_PATH_CHARS = 1024


def runs_root() -> Path:
    return Path(os.environ.get("ATLAS_RUNS") or "runs")


def allowed_roots() -> list[Path]:
    """The resolved roots a typed path may lie under (in order: the runs folder, then ATLAS_ALLOWED_ROOTS)."""
    extra = [p for p in os.environ.get("ATLAS_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().resolve() for p in [str(runs_root()), *extra]]


def inside_roots(path: Path, roots: Sequence[Path] | None = None) -> bool:
    """Whether `path`, resolved (symlinks followed), lies under one of `roots` (by default the allowed roots)."""
    return any(under(path, root) for root in (allowed_roots() if roots is None else roots))


def under(path: Path, root: Path) -> bool:
    """Whether `path`, resolved (symlinks followed), lies in `root` (resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop, or a path the system cannot resolve
        return False


def root_label(root: Path) -> str:
    """A root as a visitor sees it: relative to the server's working folder when it lies in it, else its name."""
    try:
        return root.relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return root.name or root.as_posix()


def relative(path: Path, roots: Sequence[Path] | None = None) -> Path:
    """`path` as a visitor may see it: relative to the root it lies in, led by that root's label
    ('runs/a/config.json'); with no roots (the command line) or none it lies in, the path itself, normalised
    ('/etc', not '//etc')."""
    path = Path(os.path.normpath(path))
    for root in roots or ():
        if path.is_relative_to(root):
            return Path(root_label(root)) / path.relative_to(root)
    return Path("/", *path.parts[1:]) if path.anchor == "//" else path


def shown(path: Path, roots: Sequence[Path] | None = None) -> str:
    """`relative(path, roots)` as a short plain label for a message."""
    return plain_label(relative(path, roots).as_posix(), 120)


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
        listed = ", ".join(root_label(r) for r in roots)
        raise BadInputError(
            f"This app reads {what} only from {listed}. Set ATLAS_ALLOWED_ROOTS on the server to allow other folders."
        )
    return path


def open_inside(path: Path, roots: Sequence[Path] | None) -> BinaryIO:
    """`path` opened for reading, and the file opened checked: a regular file, and with `roots` one inside
    them. Inside roots the file is opened one folder at a time from its root with O_NOFOLLOW, so what is
    opened is the file the check saw: a symlink swapped in after the check (or during the walk) is refused,
    never followed; a link that leads to another place inside them is followed. Read from the handle
    returned, never from the path again. `roots` are resolved (as `allowed_roots` gives them); None (files of
    our own, the command line's) opens any regular file. Raises BadInputError (outside the roots) or
    UnreadableFileError with a sentence naming the file relative to its root, never OSError."""
    name = shown(path, roots)
    try:
        real = Path(os.path.realpath(path))
        if roots is None:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO named config.json never blocks
        else:
            root = next((r for r in roots if real.is_relative_to(r)), None)
            if root is None:
                raise BadInputError(f"{name} leads outside the folders this app reads, so it was not read.")
            fd = _open_below(root, real.relative_to(root).parts)
    except OSError as e:
        raise _unreadable(name, e) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFileError(f"{name} is not a regular file, so it was not read.")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_below(root: Path, parts: tuple[str, ...]) -> int:
    """A file descriptor for root/parts, each part opened in the folder before it without following a link."""
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "is a folder")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # the root itself is the operator's, links and all
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    finally:
        os.close(folder)


def _unreadable(name: str, e: OSError) -> UnreadableFileError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # a link where the check saw a folder or file
        swapped = "changed while it was being read (a link took its place), so it was not read"
        return UnreadableFileError(f"{name} {swapped}.")
    if e.errno == errno.EINVAL:  # realpath's readlink of a link that was replaced after it saw one
        swapped = "changed while it was being read (a link in its path was replaced), so it was not read"
        return UnreadableFileError(f"{name} {swapped}.")
    if e.errno == errno.ENOENT:
        return UnreadableFileError(f"{name} is not there (it may have been moved or deleted).")
    if e.errno == errno.EISDIR:
        return UnreadableFileError(f"{name} is a folder, not a file.")
    return UnreadableFileError(f"{name} cannot be read ({e.strerror or e.__class__.__name__}).")
