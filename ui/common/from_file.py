"""Load settings from a file: the uploader every page that exports has. A PNG, GIF, CSV or JSON the Atlas wrote
(core/labs/provenance.py) is read in the uploader's callback, which runs before the page draws its widgets, and
the page's own `restore` sets those widgets through their session-state keys; what it cannot set comes back as
sentences, shown under the uploader. The setters here put a value into a widget's key when the widget can hold
it, else return the sentence saying why it was left."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import streamlit as st

from core.errors import AtlasError, BadInputError
from core.labs import provenance
from core.limits import max_upload_bytes
from core.text import plain_label

Note = tuple[str, str]  # (level: "success", "info", "warning" or "error"; a sentence)
Restore = Callable[[str, list[dict[str, Any]], str], list[Note]]  # (page key, records, file name) -> notes


def load_settings_box(
    key: str,
    restore: Restore,
    *,
    kinds: Sequence[str] = ("png", "json"),
    what: str = "The settings the file carries",
    where: Any = None,
) -> None:
    """The box "Load settings from a file": an expander (in the sidebar, or in `where`, e.g. `st` for the current
    tab) holding the uploader `key`-from-file, whose file's records `restore(key, records, name)` puts into the
    page's widgets; then the sentences of what was and was not restored."""
    notes: list[Note] = st.session_state.get(f"{key}-from-file-notes", [])
    with (where if where is not None else st.sidebar).expander("Load settings from a file", expanded=bool(notes)):
        names = " or ".join(filter(None, (", ".join(k.upper() for k in kinds[:-1]), kinds[-1].upper())))
        st.file_uploader(
            f"A {names} the Atlas exported (up to {max_upload_bytes() / 2**20:g} MB)",
            type=list(kinds),
            key=f"{key}-from-file",
            on_change=_restore,
            args=(key, restore),
            help=f"{what} go back into the controls; the same seed then gives the same results.",
        )
        for level, sentence in notes:
            getattr(st, level)(sentence)


def _restore(key: str, restore: Restore) -> None:
    """The uploader's callback: read the file's records, let the page set its widgets, keep the sentences."""
    upload = st.session_state.get(f"{key}-from-file")
    if upload is None:
        st.session_state.pop(f"{key}-from-file-notes", None)
        return
    name = plain_label(upload.name, 80)
    try:
        if upload.size > (limit := max_upload_bytes()):
            raise BadInputError(f"{name} is larger than {limit / 2**20:g} MB, the upload limit.")
        notes = restore(key, provenance.read(upload.getvalue(), name), name)
    except AtlasError as e:
        notes = [("error", str(e))]
    st.session_state[f"{key}-from-file-notes"] = notes


def study_page(rec: Mapping[str, Any]) -> str | None:
    """The page a record's study names ("Guidance: what each method trades"), "another page" for a study that
    names none, or None for a record of a single run (no study)."""
    study = rec.get("study")
    if study is None:
        return None
    page = study.get("page") if isinstance(study, dict) else None
    return plain_label(page, 80) if isinstance(page, str) else "another page"


def part(rec: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A record's part (its "model" or "study"), or {} where the file has none or something else there."""
    found = rec.get(name)
    return found if isinstance(found, dict) else {}


def put_number(key: str, value: float, low: float, high: float, what: str) -> list[Note]:
    """Set the number control `key` to `value` where it lies in the control's [low, high]; else a sentence."""
    if low <= value <= high:
        st.session_state[key] = value
        return []
    return [("warning", f"The file's {what} {value:g} is beyond this page's {low:g} to {high:g}; it was left.")]


def put_choice(key: str, value: Any, options: Collection[Any], what: str) -> list[Note]:
    """Set the choice control `key` to `value` where it is one of its options; else a sentence."""
    if value in options:
        st.session_state[key] = value
        return []
    shown = plain_label(str(value), 60)
    return [("warning", f"The file's {what} {shown} is not one this page offers; it was left.")]
