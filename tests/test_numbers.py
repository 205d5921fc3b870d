"""The one rule for numeric settings (core/numbers.py), which the samplers' options and toy data sets use."""

from __future__ import annotations

import math

import pytest

from core.errors import BadInputError
from core.numbers import parse_number


def test_numbers_in_range_come_back_as_floats_or_whole_ints():
    assert parse_number("0.25", "Eta", 0, 1) == 0.25 and isinstance(parse_number(1, "Eta", 0, 1), float)
    for given in (3, 3.0, "3"):
        got = parse_number(given, "Order", 1, 4, integer=True)
        assert got == 3 and isinstance(got, int)
    assert parse_number(-1e9, "Shift") == -1e9  # no bounds: any finite number
    assert parse_number(0, "Low end", 0, 1) == 0 and parse_number(1, "High end", 0, 1) == 1  # bounds included


@pytest.mark.parametrize(
    ("value", "low", "high", "integer", "sentence"),
    [
        ("lots", 0, 1, False, "Eta must be a number (got 'lots')."),
        (None, 0, 1, False, "Eta must be a number (got None)."),
        (math.nan, 0, 1, False, "Eta must be a finite number and lie between 0 and 1 (got nan)."),
        (math.inf, 0, None, False, "Eta must be a finite number and be at least 0 (got inf)."),
        (-math.inf, None, None, False, "Eta must be a finite number (got -inf)."),
        (2.5, 1, 4, True, "Eta must be a whole number (got 2.5)."),
        (1.5, 0, 1, False, "Eta must lie between 0 and 1 (got 1.5)."),
        (-0.5, 0, None, True, "Eta must be a whole number (got -0.5)."),
        (-1, 0, None, True, "Eta must be at least 0 (got -1)."),
        (5, None, 4, True, "Eta must be at most 4 (got 5)."),
    ],
)
def test_anything_else_is_refused_with_a_sentence_naming_the_setting_and_its_range(value, low, high, integer, sentence):
    with pytest.raises(BadInputError) as info:
        parse_number(value, "Eta", low, high, integer=integer)
    assert str(info.value) == sentence
