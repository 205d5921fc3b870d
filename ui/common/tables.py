"""How a page shows a table: every absent value (None, NaN, <NA>) as one mark, a dash, where Streamlit's table
would print "None"."""

from __future__ import annotations

from typing import Any

import streamlit as st

ABSENT = "—"  # in a cell: no value there (a page's caption says what that means where it is not plain)


def show_table(data: Any, container: Any = st, **kwargs: Any) -> Any:
    """`container.dataframe(data)` without the index, its absent values shown as ABSENT."""
    return container.dataframe(data, placeholder=ABSENT, **{"hide_index": True, **kwargs})
