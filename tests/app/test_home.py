"""The app's entry point and home page, run by Streamlit's own test harness."""

from __future__ import annotations

import torch
from streamlit.testing.v1 import AppTest

from core.diffusion.samplers import SAMPLERS
from tests.conftest import ROOT


def test_entry_point_runs_the_home_page_with_device_and_engine():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Diffusion Atlas"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] in {"CPU", "CUDA", "MPS"}
    assert metrics["PyTorch"] == torch.__version__
    samplers = at.dataframe[0].value
    assert set(samplers["Key"]) == set(SAMPLERS)
    assert "Device:" in at.sidebar.caption[0].value


def test_home_lists_the_zoo_and_the_sidebar_says_what_is_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    zoo = at.dataframe[2].value
    assert "ddpm-cifar10-32" in set(zoo["Key"])
    assert set(zoo.loc[zoo["Source"].str.startswith("Hub"), "Status"].str.split(" ").str[0]) == {"needs"}
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "offline mode" in captions and "models ready here" in captions


def test_home_shows_the_fingerprint_of_every_cached_model_and_it_matches_the_files(app_env):
    from core.models.fingerprint import weights_fingerprint
    from ui.common.cache import registry
    from zoo.loaders import load_model

    samplers = AppTest.from_file(str(ROOT / "app_pages" / "samplers.py"), default_timeout=120).run()
    samplers.button(key="smp-go").click().run()  # loads the page's default model into the server's cache
    assert not samplers.exception
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    table = at.table[0].value
    name = samplers.selectbox(key="smp-model").value
    row = table.loc[f"{name} (cpu)"]
    fresh = load_model(registry().model(name), "cpu").module
    assert row["Weights SHA-256"] == weights_fingerprint(fresh)  # sampling changed nothing
    with torch.no_grad():
        next(fresh.parameters()).view(-1)[0] += 1e-3
    assert weights_fingerprint(fresh) != row["Weights SHA-256"]


def test_every_home_table_converts_to_arrow_as_it_is(app_env):
    """Streamlit sends tables as Arrow; a column of mixed types fails that and is logged with a traceback on
    every render (the zoo table's Classes column did: ints and "-")."""
    import pyarrow as pa

    from ui.common.cache import registry
    from ui.home.tables import model_table, sampler_table, schedule_table

    for table in (sampler_table(), schedule_table(), model_table(registry())):
        pa.Table.from_pandas(table)  # raises ArrowTypeError / ArrowInvalid on a mixed column
    classes = model_table(registry())["Classes"]
    assert str(classes.dtype) == "Int64" and classes.isna().any() and (classes.dropna() > 0).all()


def test_home_never_lists_a_repo_id_another_visitor_typed(app_env, fake_hub, tmp_path):
    from tests.zoo_fixtures import pipeline_files

    files, _ = pipeline_files(tmp_path)
    for name, data in files.items():
        fake_hub.add("someone/private-experiment", name, data)
    visitor = AppTest.from_file(str(ROOT / "app_pages" / "compare_checkpoints.py"), default_timeout=120).run()
    visitor.multiselect(key="ck-models").set_value(["tiny-uncond"]).run()
    visitor.text_input(key="ck-repo").set_value("someone/private-experiment").run()
    assert not visitor.exception and "private-experiment: 3x8x8" in visitor.error[0].value  # loaded (a CIFAR shape)
    other = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    listed = " ".join(other.table[0].value.index)
    assert "tiny-uncond" in listed and "private-experiment" not in listed


def test_home_tables_show_a_dash_where_a_value_is_absent_never_none(app_env):
    """Streamlit prints a missing cell as "None" unless told otherwise (the zoo's Classes of an unconditional
    model did): every Home table shows absent values as one dash, which a caption explains."""
    from ui.common.tables import ABSENT

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception and len(at.dataframe) == 3
    for frame in at.dataframe:
        table = frame.value
        shown = table.astype(object).where(table.notna(), frame.proto.placeholder).astype(str)  # what a reader sees
        assert not shown.isin(["None", "nan", "<NA>", "NaN", "-", ""]).any().any(), shown
    zoo = at.dataframe[2]
    assert zoo.value["Classes"].isna().any() and zoo.proto.placeholder == ABSENT  # unconditional models: a dash
    assert (at.dataframe[0].value["Options"] == ABSENT).any()  # samplers without options
    assert any(c.value.startswith(f"{ABSENT} in these tables: nothing there") for c in at.caption)
