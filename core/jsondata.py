"""JSON that someone else wrote (a checkpoint's config, a run's config and metrics): parsed within a size and a
depth, so a hostile file is a sentence, not a RecursionError from the parser (200,000 nested lists) or a config
held in memory whole. The zoo's config reader and the run readers both parse through here."""

from __future__ import annotations

import json
from typing import Any

MAX_BYTES = 8 * 2**20  # a config file; more is not a config (and is not read into memory)
MAX_DEPTH = 32  # configs nest a few levels; 200,000 raised RecursionError, and deep ones break repr()


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH levels."""

    def __init__(self) -> None:
        super().__init__(f"nests deeper than {MAX_DEPTH} levels")


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`, or TooDeep past MAX_DEPTH levels (json.JSONDecodeError, a ValueError too, as json's)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if depth(data) > MAX_DEPTH:
        raise TooDeep()
    return data


def depth(data: Any) -> int:
    """How many levels of lists and objects `data` nests (0 for a number or string), found without recursion and
    without looking past MAX_DEPTH + 1."""
    deepest, stack = 0, [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        items = value.values() if isinstance(value, dict) else value
        stack.extend((v, level + 1) for v in items if isinstance(v, (dict, list)))
    return deepest
