"""How far a long job on a page got, kept so that what the page says about it stays true after a Stop.

Streamlit's fast reruns (.streamlit/config.toml) start the page's next run as soon as a visitor clicks while a
job runs (its Stop, or any widget), while the old run goes on in its own thread until its next redraw, where
Streamlit ends it. A row that thread finished in between would land in the session after the new run had shown
the job as stopped: "Stopped after 2 of 16 measurements", and a click later "3 of 16". So a job keeps each
result through its `Tally`, and the page closes the tally where it shows the results: from then on the old
run keeps nothing more (and ends at once), and what was shown stays as it was.

    kept = start(SWEEP, key, Kept(Tally(planned=len(scales)), []))   # when the job starts
    for row in rows:
        if not kept.tally.add(partial(kept.value.append, row)):
            return                                 # a later run has shown the job: this one is over
    ...
    found = shown(SWEEP)                           # where the page shows the record, in every run: closed
    if sentence := found[1].tally.stopped("scales", "any scale was measured", "press Sweep to measure them all"):
        st.warning(sentence)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import streamlit as st

from ui.common.memo import Memo

_LOCK = threading.Lock()  # one for every tally: each hold is a few assignments


@dataclass(eq=False)
class Tally:
    """A job's `planned` steps and those `done`; open while the run that started it may still keep results."""

    planned: int
    done: int = 0
    open: bool = True

    def keep(self, change: Callable[[], object]) -> bool:
        """Apply `change` (put a result in the session) while the tally is open; False, changing nothing, once
        it is closed."""
        with _LOCK:
            if self.open:
                change()
            return self.open

    def add(self, change: Callable[[], object] = lambda: None) -> bool:
        """`keep` a finished step's result and count it done."""
        with _LOCK:
            if not self.open:
                return False
            change()
            self.done += 1
            return True

    def close(self) -> None:
        """No result kept after this: the page is showing what there is."""
        with _LOCK:
            self.open = False

    def stopped(self, many: str, nothing: str, again: str) -> str | None:
        """'Stopped after 2 of 16 `many`; `again`.', or 'Stopped before `nothing`; `again`.' with none done;
        None when every planned step is done."""
        if self.done >= self.planned:
            return None
        if self.done == 0:
            return f"Stopped before {nothing}; {again}."
        return f"Stopped after {self.done} of {self.planned} {many}; {again}."


class Record(Protocol):
    """A job's record in a memo: its results (in whatever fields) and its tally."""

    tally: Tally


K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=Record)
V = TypeVar("V")


@dataclass(eq=False)
class Kept(Generic[V]):
    """The simplest record: one value, replaced (or changed) as the job goes."""

    tally: Tally
    value: V


def start(memo: Memo[K, R], key: K, record: R) -> R:
    """Keep a new job's `record` for `key`, closing the record it replaces: a job still running in an earlier
    run (a click started this one) keeps nothing more."""
    if (last := memo.latest()) is not None:
        last[1].tally.close()
    return memo.put(key, record)


def shown(memo: Memo[K, R]) -> tuple[K, R] | None:
    """The memo's last record, whatever its key, closed: the page shows it now, and it stays as shown."""
    if (found := memo.latest()) is not None:
        found[1].tally.close()
    return found


_UNDER_WAY = "jobs:under-way"  # in the session: the short jobs whose run has not come back from them


@contextmanager
def under_way(name: str) -> Iterator[None]:
    """Around a short job that has no Stop (a few seconds): a click while it runs ends the run inside it, and
    the page's next run can then say so (`cut_short`) instead of showing the button as if nothing had happened."""
    marks = st.session_state.setdefault(_UNDER_WAY, set())
    marks.add(name)
    yield  # a click's rerun or Stop raises through here and leaves the mark
    marks.discard(name)


def cut_short(name: str) -> bool:
    """True, once, when the last run of job `name` was ended by a click before the job was done."""
    marks = st.session_state.get(_UNDER_WAY, set())
    if name not in marks:
        return False
    marks.discard(name)
    return True
