"""Reading a record back from each file the Atlas writes (core/labs/provenance.py): a CSV's first comment line,
also after a spreadsheet saved it again, and a JSON file holding a record, a list of them or a wrapper."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from core.diffusion.guidance import Guidance
from core.errors import BadInputError
from core.labs import provenance
from core.labs.samplers import SamplerSettings


def _records() -> list[dict]:
    settings = SamplerSettings(sampler="heun", steps=7, seed=3, batch=5, label=2, guidance=Guidance(scale=2.5))
    study = {"page": "A study", "series": [provenance.series_part("CFG", Guidance(), [1.0, 2.0])]}
    return [provenance.record("an exact mixture", settings), provenance.record(None, settings, study=study)]


def test_a_csv_carries_its_records_on_its_first_line_and_its_table_below():
    records = _records()
    text = provenance.csv("step,FD\n10,3.5\n20,2.25\n", records)
    assert provenance.read(text.encode(), "table.csv") == json.loads(json.dumps(records))
    assert provenance.settings_from(provenance.read(text.encode())[0]) == SamplerSettings(
        sampler="heun", steps=7, seed=3, batch=5, label=2, guidance=Guidance(scale=2.5)
    )
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert list(table.columns) == ["step", "FD"] and list(table["step"]) == [10, 20]
    # Saved again by a spreadsheet: a byte order mark before it, Windows line ends
    again = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    assert provenance.read(again, "table.csv") == provenance.read(text.encode())


def test_a_json_file_holds_one_record_a_list_or_a_wrapper_and_a_records_own_atlas_field_is_not_a_wrapper():
    one, other = json.loads(json.dumps(_records()))
    assert one["atlas"] == provenance.atlas_version()  # a record's "atlas" field: the code version
    assert provenance.read(json.dumps(one).encode()) == [one]
    assert provenance.read(json.dumps([one, other]).encode()) == [one, other]
    assert provenance.read(json.dumps({"atlas": one, "results": []}).encode()) == [one]  # zoo compare's results
    with pytest.raises(BadInputError, match="not in the Atlas's format"):
        provenance.read(json.dumps({"atlas": "1.0", "format": "something else"}).encode())


def test_a_csv_without_the_records_line_gets_a_sentence():
    with pytest.raises(BadInputError, match="not a PNG, GIF, CSV or JSON file that the Atlas wrote"):
        provenance.read(b"step,FD\n10,3.5\n", "table.csv")
