"""Manifest text written from plain dicts: the TOML of zoo/models.toml that zoo/registry.py parses.

For the tests and benchmarks that make a zoo of their own:

    manifest_text(models=[{"name": "m", "title": "M", "family": "pixel", ..., "schedule": {"kind": "cosine"}}])

Each dict is one `[[models]]` or `[[datasets]]` table, its keys in the order given. Values are strings,
booleans, numbers, lists and tables; a table is written inline (schedule = { kind = "cosine" }), except a
model's `config`, which follows its entry as the sub-table `[models.config]`, as in zoo/models.toml. The
writer checks nothing: an entry that the parser refuses is written all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

SUB_TABLES = ("config",)  # written as [models.<key>] below the entry, not inline
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def manifest_text(models: Sequence[Mapping[str, Any]] = (), datasets: Sequence[Mapping[str, Any]] = ()) -> str:
    """The manifest listing `models` then `datasets`, one table each (see the module docstring)."""
    tables = [_table("models", entry) for entry in models] + [_table("datasets", entry) for entry in datasets]
    return "\n".join(tables)


def _table(kind: str, entry: Mapping[str, Any]) -> str:
    subs = {k: v for k, v in entry.items() if kind == "models" and k in SUB_TABLES and isinstance(v, Mapping)}
    lines = [f"[[{kind}]]", *_pairs({k: v for k, v in entry.items() if k not in subs})]
    for key, table in subs.items():
        lines += ["", f"[{kind}.{_key(key)}]", *_pairs(table)]
    return "\n".join(lines) + "\n"


def _pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    """One TOML value: bool before int (a bool is an int in Python); Python's float repr is TOML's (1e-05,
    inf, nan)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return f"{{ {', '.join(_pairs(value))} }}" if value else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"A manifest holds strings, numbers, booleans, lists and tables, not {type(value).__name__}.")


def _string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters (and DEL) as \\uXXXX."""
    escaped = (f"\\{c}" if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return '"' + "".join(escaped) + '"'
