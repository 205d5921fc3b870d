"""Errors that carry a sentence for the user.

Expected bad input (a broken upload, an unknown schedule, an unknown repo, no network) raises one of
these; pages show `str(error)` with `st.error` and keep running. Anything else is a bug and may show a
traceback.
"""

from __future__ import annotations


class AtlasError(Exception):
    """Base class: the message is a complete sentence meant for the person using the app."""


class BadInputError(AtlasError, ValueError):
    """A setting, upload or file the app cannot use."""


class UnreadableFileError(AtlasError):
    """A file that could not be read as named: not there, not a regular file, or a link put in its place while
    it was being opened (core/paths.open_inside)."""
