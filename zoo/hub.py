"""Fetching files from the Hugging Face Hub into its normal cache, safely and fast to fail.

- Repo ids, revisions and file names are validated before any request (no path tricks, no URLs).
- Cached files are used without any request, so a second load costs nothing and works offline.
- Offline (HF_HUB_OFFLINE=1) or with the endpoint unreachable, uncached files fail in a few seconds with a
  sentence saying a connection is needed, instead of a long series of retries.
- A sha256 pinned by the manifest is checked after download; a mismatching file is removed from the cache.
- A file larger than the server's limit (ATLAS_MAX_DOWNLOAD_MB, core/limits.py) is refused by the size the Hub
  states before sending it.

The endpoint, cache folder and offline flag are read from the environment at call time (HF_ENDPOINT,
HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE), so tests and users can change them without re-importing anything.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from core.limits import max_download_bytes
from core.text import plain_label
from zoo.errors import BadInputError, ChecksumError, HubError, NeedsConnectionError, TooLargeError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
PROBE_MEMORY_S = 30.0

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^{_NAME}/{_NAME}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_FILE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")


def validate_repo_id(repo_id: str) -> str:
    """'owner/name' with letters, digits, '-', '_', '.'; no '..' or '--', no URL, no path. Returns it stripped."""
    cleaned = str(repo_id).strip()
    if not _REPO_ID.match(cleaned) or ".." in cleaned or "--" in cleaned:
        raise BadInputError(
            f"'{plain_label(repo_id, 60)}' is not a Hugging Face repo id: write it as owner/name (letters, digits, "
            "'-', '_', '.'), for example google/ddpm-cifar10-32."
        )
    return cleaned


def validate_revision(revision: str) -> str:
    cleaned = str(revision).strip()
    if not _REVISION.match(cleaned) or ".." in cleaned or "//" in cleaned or cleaned.endswith(("/", ".lock")):
        raise BadInputError(
            f"'{plain_label(revision, 60)}' is not a valid revision: give a branch, tag or commit hash."
        )
    return cleaned


def validate_filename(filename: str) -> str:
    parts = str(filename).split("/")
    if not all(_FILE_PART.match(p) for p in parts) or len(parts) > 8:
        raise BadInputError(f"'{plain_label(filename, 60)}' is not a valid file path inside a repo.")
    return str(filename)


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    cache_dir: Path
    offline: bool


def hub_settings() -> HubSettings:
    """The Hub endpoint, cache folder and offline flag, as the environment says right now."""
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return HubSettings(endpoint, Path(cache), offline)


_probes: dict[str, tuple[float, bool]] = {}


def endpoint_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the endpoint? Remembered for PROBE_MEMORY_S seconds."""
    now = time.monotonic()
    seen = _probes.get(endpoint)
    if seen and now - seen[0] < PROBE_MEMORY_S:
        return seen[1]
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _probes[endpoint] = (now, ok)
    return ok


def forget_probes() -> None:
    _probes.clear()


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _cached(repo_id: str, filename: str, revision: str, repo_type: str, settings: HubSettings) -> Path | None:
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            repo_type=repo_type,
            cache_dir=settings.cache_dir,
            local_files_only=True,
        )
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError):
        return None
    return Path(path)


def cached_files(
    repo_id: str, filenames: Sequence[str], *, revision: str = "main", repo_type: str = "model"
) -> dict[str, Path | None]:
    """Each file's path in the local Hugging Face cache, or None where it is not cached. Never touches the network."""
    settings = hub_settings()
    return {f: _cached(repo_id, f, revision, repo_type, settings) for f in filenames}


def _remove_from_cache(path: Path) -> None:
    """Delete a cached file and the blob it points to, so the next fetch downloads it again."""
    blob = path.resolve()
    for p in (path, blob):
        p.unlink(missing_ok=True)


def _where(repo_id: str, repo_type: str) -> str:
    return f"data set {repo_id}" if repo_type == "dataset" else f"repo {repo_id}"


def _download(repo_id: str, filename: str, revision: str, repo_type: str, settings: HubSettings) -> Path:
    """One file into the cache, after the Hub has said its size (a HEAD request) and it is within the limit."""
    where = dict(
        repo_id=repo_id,
        filename=filename,
        revision=revision,
        repo_type=repo_type,
        cache_dir=settings.cache_dir,
        endpoint=settings.endpoint,
        etag_timeout=PROBE_TIMEOUT_S * 2,
    )
    try:
        size = hf_hub_download(**where, dry_run=True).file_size or 0
        if size > max_download_bytes():
            raise TooLargeError(
                f"{filename} from {repo_id} is {size / 2**20:,.1f} MB; this server downloads files of at most "
                f"{max_download_bytes() / 2**20:,.1f} MB (ATLAS_MAX_DOWNLOAD_MB)."
            )
        return Path(hf_hub_download(**where))
    except GatedRepoError as e:
        raise HubError(f"The {_where(repo_id, repo_type)} is gated: accept its terms on the Hub and log in.") from e
    except RepositoryNotFoundError as e:
        raise HubError(f"The Hub has no {_where(repo_id, repo_type)} (or it is private).") from e
    except RevisionNotFoundError as e:
        raise HubError(f"The {_where(repo_id, repo_type)} has no revision {revision!r}.") from e
    except EntryNotFoundError as e:
        if isinstance(e, LocalEntryNotFoundError):
            raise NeedsConnectionError(
                f"{filename} from {repo_id} is not cached and the Hub did not answer; it needs a connection."
            ) from e
        raise HubError(f"The {_where(repo_id, repo_type)} has no file {filename!r} at revision {revision!r}.") from e
    except OfflineModeIsEnabled as e:
        raise NeedsConnectionError(f"{filename} from {repo_id} is not cached and the Hub is switched off.") from e
    except HfHubHTTPError as e:
        raise HubError(f"The Hub refused {filename} from {repo_id}: {e.response.status_code}.") from e
    except OSError as e:
        raise NeedsConnectionError(f"Downloading {filename} from {repo_id} failed ({e.__class__.__name__}).") from e


def fetch(
    repo_id: str,
    filenames: Sequence[str],
    *,
    revision: str = "main",
    repo_type: str = "model",
    sha256: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Local paths of the given files of a Hub repo, downloading only what the cache lacks.

    Raises BadInputError (malformed id, revision or file name), NeedsConnectionError (not cached and
    offline or unreachable), HubError (unknown repo, revision or file), ChecksumError (sha256 mismatch).
    """
    repo_id, revision = validate_repo_id(repo_id), validate_revision(revision)
    files = [validate_filename(f) for f in filenames]
    if repo_type not in ("model", "dataset"):
        raise BadInputError(f"Unknown repo type {repo_type!r}.")
    settings = hub_settings()
    paths = cached_files(repo_id, files, revision=revision, repo_type=repo_type)
    missing = [f for f, p in paths.items() if p is None]
    if missing:
        if settings.offline:
            raise NeedsConnectionError(
                f"The {_where(repo_id, repo_type)} is not in the local cache and HF_HUB_OFFLINE is set: "
                "it needs a connection to the Hugging Face Hub."
            )
        if not endpoint_reachable(settings.endpoint):
            raise NeedsConnectionError(
                f"The {_where(repo_id, repo_type)} is not in the local cache and {settings.endpoint} cannot be "
                "reached: it needs a connection to the Hugging Face Hub."
            )
        for f in missing:
            path = _download(repo_id, f, revision, repo_type, settings)
            expected = (sha256 or {}).get(f)
            if expected and sha256_of(path) != expected.lower():
                _remove_from_cache(path)
                raise ChecksumError(f"{f} from {repo_id} does not match its pinned sha256: the download was discarded.")
            paths[f] = path
    return {f: p for f, p in paths.items() if p is not None}
