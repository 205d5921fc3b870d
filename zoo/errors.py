"""Zoo errors: each message names what is wrong (entry, field, repo, file) in a sentence for the user."""

from __future__ import annotations

from core.errors import AtlasError, BadInputError


class ZooError(AtlasError):
    """A model or data set that cannot be listed, fetched or loaded."""


class ManifestError(ZooError):
    """zoo/models.toml (or another manifest) has an entry that is malformed."""


class NeedsConnectionError(ZooError):
    """The files are not cached and the Hub cannot be reached (offline mode or no network)."""


class HubError(ZooError):
    """The Hub answered, but not with the file we asked for (unknown repo, revision or file)."""


class TooLargeError(ZooError):
    """A file or network over the server's limits (core/limits.py), refused before it is fetched or built."""


class ChecksumError(ZooError):
    """A file's sha256 differs from the one the manifest pins."""


class CheckpointError(ZooError):
    """A checkpoint file is damaged, is not a plain state dict, or does not fit its architecture."""


__all__ = [
    "BadInputError",
    "CheckpointError",
    "ChecksumError",
    "HubError",
    "ManifestError",
    "NeedsConnectionError",
    "TooLargeError",
    "ZooError",
]
