"""The one rule for a numeric setting a person gives: a finite number in [low, high], whole where it counts.

Used by the samplers' options (core/diffusion/samplers.py) and the toy data sets' shape parameters
(core/data/toy.py), so that 2.5 steps or a NaN width is refused with the same kind of sentence everywhere.
"""

from __future__ import annotations

import math

from core.errors import BadInputError


def parse_number(
    value: object, name: str, low: float | None = None, high: float | None = None, *, integer: bool = False
) -> int | float:
    """`value` as a float (an int when `integer`), or BadInputError with a sentence naming `name` and the range.

    Refused: anything float() cannot read, NaN and infinities, a non-whole number when `integer` (2.5 is
    refused, not rounded; 2.0 is 2), and numbers outside [low, high] (a bound of None is open).
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise BadInputError(f"{name} must be a number (got {value!r}).") from None
    bounds = _bounds(low, high)
    if not math.isfinite(number):
        raise BadInputError(f"{name} must be a finite number{f' and {bounds}' if bounds else ''} (got {value!r}).")
    if integer and not number.is_integer():
        raise BadInputError(f"{name} must be a whole number (got {value!r}).")
    if (low is not None and number < low) or (high is not None and number > high):
        raise BadInputError(f"{name} must {bounds} (got {value!r}).")
    return int(number) if integer else number


def _bounds(low: float | None, high: float | None) -> str:
    """The range as a verb phrase: "lie between 0 and 1", "be at least 0", "be at most 4", or "" when open."""
    if low is not None and high is not None:
        return f"lie between {low:g} and {high:g}"
    if low is not None:
        return f"be at least {low:g}"
    return f"be at most {high:g}" if high is not None else ""
