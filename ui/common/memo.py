"""A result a page keeps in this session for the settings it was made with: the one way pages memoise.

    CLOUD = Memo[CloudKey, Inverted]("inv-cloud")      # once per page module, a name unique to the page
    found = CLOUD.make(CloudKey(source, n, seed), lambda: invert(...))   # built once per key
    CLOUD.get(key)       # the result made for exactly these settings, or None
    CLOUD.latest()       # (key, result) whatever the settings now (shown as "from earlier settings")

A key is a frozen dataclass (or a tuple) of plain values: its fields name the settings, so a key that differs in
one setting is written with `dataclasses.replace`, never by slicing tuples. Each memo holds one entry, the latest:
a page shows the result for its settings now, and a result for other settings only with a note. Entries live in
st.session_state, so every session sees only its own. A page that keeps one memo per item (a checkpoint, a step)
names them with one prefix and drops the items it no longer shows with `forget_others`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class _Entry:
    key: Any
    value: Any


@dataclass(frozen=True)
class Memo(Generic[K, V]):
    name: str

    @property
    def _slot(self) -> str:
        return f"memo:{self.name}"

    def latest(self) -> tuple[K, V] | None:
        """The last result kept, with the key it was made for (None when there is none)."""
        entry = st.session_state.get(self._slot)
        return (entry.key, entry.value) if entry is not None else None

    def get(self, key: K) -> V | None:
        """The result made for `key`, or None (none kept, or one for other settings)."""
        entry = st.session_state.get(self._slot)
        return entry.value if entry is not None and entry.key == key else None

    def put(self, key: K, value: V) -> V:
        """Keep `value` as the result for `key` (replacing whatever was kept)."""
        hash(key)  # a key must compare by value: no lists, dicts or tensors
        st.session_state[self._slot] = _Entry(key, value)
        return value

    def make(self, key: K, build: Callable[[], V]) -> V:
        """The result for `key`: kept, or built now (and kept). An exception in `build` keeps nothing."""
        entry = st.session_state.get(self._slot)
        if entry is not None and entry.key == key:
            return entry.value
        return self.put(key, build())

    def clear(self) -> None:
        st.session_state.pop(self._slot, None)


def forget_others(prefix: str, keep: Collection[Any]) -> None:
    """Clear this session's memos named `prefix` + an item, except the items in `keep`: what a page keeps per item
    stays bounded by the items it shows, however many a session has been through."""
    slots = {Memo(f"{prefix}{item}")._slot for item in keep}
    start = Memo(prefix)._slot
    for slot in [s for s in st.session_state if isinstance(s, str) and s.startswith(start) and s not in slots]:
        del st.session_state[slot]
