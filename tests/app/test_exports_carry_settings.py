"""Every page export carries the settings it was made with (core/labs/provenance.py), read back from the file:
Compare checkpoints' table (CSV), and the Guidance page's two tables (CSV)."""

from __future__ import annotations

import io

import pandas as pd
from streamlit.testing.v1 import AppTest

from core.labs import provenance
from tests.app.helpers import open_page
from tests.app.test_samplers_from_file import _downloads, media  # noqa: F401 (a fixture)
from tests.conftest import ROOT


def test_compare_checkpoints_table_carries_each_checkpoints_record(app_env, media):  # noqa: F811
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare_checkpoints.py"), default_timeout=120).run()
    at.number_input(key="ck-steps").set_value(2)
    at.slider(key="ck-batch").set_value(3)
    at.number_input(key="ck-seed").set_value(9).run()
    at.button(key="ck-go").click().run()
    assert not at.exception
    files = _downloads(at, media)
    records = provenance.read(files["ck-csv"], "checkpoints.csv")
    assert len(records) == 2 and all(r["settings"]["seed"] == 9 and r["settings"]["steps"] == 2 for r in records)
    assert all(r["model"]["sha256"] and r["model"]["spec"] for r in records)
    assert len(pd.read_csv(io.BytesIO(files["ck-csv"]), comment="#")) == 2  # the table itself is unchanged


def test_the_guidance_tables_carry_their_settings(monkeypatch, media):  # noqa: F811
    at = open_page("guidance", monkeypatch)
    at.multiselect(key="gx-methods").set_value(["cfg", "apg"])
    at.multiselect(key="gx-scales").set_value([2.0])
    at.select_slider(key="gx-n").set_value(500)
    at.button(key="gx-go").click().run()
    assert not at.exception and not at.error
    rec = provenance.read(_downloads(at, media)["gx-csv"], "guidance_exact.csv")[0]
    assert rec["settings"]["batch"] == 500 and "mixture" in rec["model"]["name"]
    assert [s["guidance"]["method"] for s in rec["study"]["series"]] == ["cfg", "apg"]
    assert rec["study"]["series"][0]["scales"] == [2.0]

    at.radio(key="gd-source").set_value("latent").run()
    at.select_slider(key="gd-n-latent").set_value(50)
    at.multiselect(key="gd-scales").set_value([3.0])
    at.multiselect(key="gd-methods").set_value(["cfg"])
    at.slider(key="gd-steps").set_value(5).run()
    at.button(key="gd-go").click().run()
    assert not at.exception and not at.error
    rec = provenance.read(_downloads(at, media)["gd-csv"], "guidance_sweep.csv")[0]
    assert rec["model"]["name"] == "mnist-latent-cond" and rec["settings"]["steps"] == 5
    assert rec["study"]["series"][0]["scales"] == [3.0] and rec["study"]["source"] == "latent"
