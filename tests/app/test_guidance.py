"""The Guidance page through Streamlit's AppTest, on the bundled models: the scale sweep on both conditional
models (with and without a guidance interval), stale and stopped results, an empty interval, and the latent
plane's three fields."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.labs import provenance
from core.labs.guidance import sweep as gd
from tests.app.helpers import figures, open_page, table
from tests.app.test_samplers_from_file import _downloads, media  # noqa: F401 (a fixture)

INTERVAL = "CFG, σ in (0.28, 5.42]"


def _sweep_results(at):
    return next(d.value for d in at.dataframe if "FD-LeNet" in d.value.columns)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    return open_page("guidance", monkeypatch)


def _sweep(at: AppTest, source: str, n: int, scales: list[float], interval: bool = True) -> AppTest:
    at.radio(key="gd-source").set_value(source).run()
    at.select_slider(key=f"gd-n-{source}").set_value(n)
    at.multiselect(key="gd-scales").set_value(scales)
    at.multiselect(key="gd-methods").set_value(["cfg", "interval"] if interval else ["cfg"])
    at.slider(key="gd-steps").set_value(10).run()
    at.button(key="gd-go").click().run()
    assert not at.exception and not at.error
    return at


def test_a_latent_sweep_with_an_interval_reads_more_guidance_as_more_accurate_and_less_diverse(app):
    assert any("press **Sweep**" in i.value for i in app.info)
    _sweep(app, "latent", 50, [0.0, 3.0])
    table = _sweep_results(app)
    assert list(table["Series"]) == ["CFG"] * 2 + [INTERVAL] * 2 + ["real held-out digits"]
    always = table[table["Series"] == "CFG"].set_index("Scale")
    assert always.loc["3", "Accuracy"] > always.loc["0", "Accuracy"] + 0.3
    assert always.loc["3", "Diversity"] < always.loc["0", "Diversity"]
    real = table.iloc[-1]
    assert real["Scale"] == "—"  # no scale for real digits (never a literal None)
    assert real["Accuracy"] > 0.9 and real["FD-LeNet"] < always["FD-LeNet"].min()  # the real digits' level
    curves = figures(app)[0]
    assert {t["name"] for t in curves["data"]} == {"CFG", INTERVAL}
    assert all(0 <= p <= 1 for p in table["Precision"]) and all(0 <= c <= 1 for c in table["Coverage"])
    assert real["Recall"] > always["Recall"].min()  # real digits reach more of the held-out ones than w = 3
    strips = [c for element in app.get("image") for c in element.captions]
    assert strips == ["w = 0", "w = 3"] * 2  # one row of ten digits per scale and series
    app.slider(key="gd-steps").set_value(12).run()
    assert any("other settings" in c.value for c in app.caption)  # the old numbers are labelled, not passed off
    assert not app.warning


def _stopped_after(monkeypatch, scales: int) -> None:
    """The sweep as a Stop ends it: the run ends (as Streamlit ends it, at a redraw) while the scale after the
    first `scales` is measured."""
    real_sweep, done = gd.sweep, []

    def sweep(*args, **kwargs):
        for row in real_sweep(*args, **kwargs):
            if not math.isnan(row.scale):  # the real digits' row comes first
                if len(done) == scales:
                    raise StopException()
                done.append(row)
            yield row

    monkeypatch.setattr(gd, "sweep", sweep)


def test_a_sweep_draws_each_scale_as_it_is_measured_and_a_stop_keeps_them_with_a_sentence(app, monkeypatch):
    _stopped_after(monkeypatch, 3)
    _sweep(app, "latent", 20, [0.0, 3.0])  # the run that the Stop ends, while the fourth scale is measured
    assert not any("press **Sweep**" in i.value for i in app.info)  # the hint went when the sweep began
    live = figures(app)  # drawn while the sweep ran, before the Stop: three measures a scale, and the trade-offs
    assert len(live) == 2 and sum(len(t["x"]) for t in live[0]["data"]) in (3, 6, 9)
    app.run()  # the Stop's own run
    assert [w.value for w in app.warning] == [
        "Stopped after 3 of 4 scales of the 2 series; press **Sweep** to measure them all."
    ]
    table = _sweep_results(app)
    assert list(table["Series"]) == ["CFG"] * 2 + [INTERVAL, "real held-out digits"]
    strips = [c for element in app.get("image") for c in element.captions]
    assert strips == ["w = 0", "w = 3", "w = 0"]  # the digits of the scales kept, none of the stopped one
    sweep = app.session_state["memo:gd-sweep"].value
    assert not sweep.tally.add()  # the stopped run, finishing its scale now, would keep nothing
    app.run()
    assert len(_sweep_results(app)) == 4 and "3 of 4" in app.warning[0].value


def test_a_stop_before_the_first_scale_says_so(app, monkeypatch):
    _stopped_after(monkeypatch, 0)
    _sweep(app, "latent", 20, [0.0, 3.0], interval=False)
    app.run()
    assert [w.value for w in app.warning] == [
        "Stopped before any scale was measured; press **Sweep** to measure them all."
    ]
    assert not any("**Sweep**" in i.value for i in app.info)  # no hint (the exact tab's own stays)
    assert not app.dataframe and not figures(app)[:-1]  # only the fields' figure


def test_a_pixel_sweep_without_an_interval(app):
    _sweep(app, "pixel", 20, [1.0, 5.0], interval=False)
    table = _sweep_results(app)
    assert list(table["Series"]) == ["CFG", "CFG", "real held-out digits"]
    assert (table["Samples"] == 20).all() and table["Accuracy"].iloc[1] >= table["Accuracy"].iloc[0]


def test_an_empty_interval_and_no_scales_get_sentences(app):
    app.multiselect(key="gd-methods").set_value(["cfg", "interval"])
    app.select_slider(key="gd-interval").set_value((1.0, 1.0)).run()
    assert any("interval is empty" in w.value for w in app.warning)
    app.select_slider(key="gd-interval").set_value((0.28, 5.42))
    app.multiselect(key="gd-scales").set_value([]).run()
    assert not app.exception and app.button(key="gd-go").disabled
    assert any("at least one method" in w.value for w in app.warning)


def test_the_latent_fields_show_the_guided_mix_at_every_noise_level(app):
    fields = figures(app)[-1]
    titles = [a["text"] for a in fields["layout"]["annotations"]]
    assert titles == ["conditional: class 3", "unconditional", "guided: CFG w = 3"]
    assert len(fields["frames"]) == 8
    app.selectbox(key="gd-field-class").set_value(7)
    app.select_slider(key="gd-field-sigmas").set_value((2.0, 2.0)).run()
    fields = figures(app)[-1]
    assert fields["layout"]["annotations"][0]["text"] == "conditional: class 7"
    assert len(fields["frames"]) == 1 and not app.exception


def test_every_method_sweeps_the_latent_model_and_names_its_series(app):
    app.multiselect(key="gd-methods").set_value(["cfg", "interval", "rescale", "apg", "cfg++", "auto"])
    app.multiselect(key="gd-lambdas").set_value([0.6])
    _sweep_keeping(app, "latent", 20, [3.0])
    table = _sweep_results(app)
    assert list(table["Series"]) == [
        "CFG",
        INTERVAL,
        "CFG + rescale (φ 0.7)",
        "APG (η 0, β -0.5)",
        "CFG++",
        "Autoguidance (mnist-latent-guide)",
        "real held-out digits",
    ]
    assert list(table["Scale"]) == ["3"] * 4 + ["0.6", "3", "—"]
    best = next(d.value for d in app.dataframe if "Best scale" in d.value.columns)
    assert len(best) == 6 and not app.exception


def _sweep_keeping(at: AppTest, source: str, n: int, scales: list[float]) -> AppTest:
    """A sweep with the methods already chosen on the page."""
    at.radio(key="gd-source").set_value(source).run()
    at.select_slider(key=f"gd-n-{source}").set_value(n)
    at.multiselect(key="gd-scales").set_value(scales)
    at.slider(key="gd-steps").set_value(4).run()
    at.button(key="gd-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_a_users_checkpoint_guides_the_pixel_model_and_a_wrong_one_gets_a_sentence(app, monkeypatch, tmp_path):
    """Autoguidance by a checkpoint folder on this server, as a run writes one (its weights, scheduler config and
    atlas.json with the null label); a folder that is not a guide is refused with a sentence."""
    from core.diffusion.schedules import make_schedule
    from core.runs.checkpoints import ATLAS_FILE, as_json, scheduler_config
    from zoo.registry import load_registry

    monkeypatch.setenv("ATLAS_RUNS", str(tmp_path))
    folder = tmp_path / "my-run" / "checkpoints" / "step_0001000"
    shutil.copytree(load_registry().model("mnist-cond-guide").path, folder, ignore=shutil.ignore_patterns("run"))
    (folder / "scheduler_config.json").write_bytes(as_json(scheduler_config(make_schedule("cosine"), "epsilon")))
    (folder / ATLAS_FILE).write_bytes(as_json({"null_label": 10, "data": "mnist"}))
    app.multiselect(key="gd-methods").set_value(["auto"]).run()
    app.radio(key="gd-source").set_value("pixel").run()
    app.radio(key="gd-guide").set_value("a checkpoint folder").run()
    assert app.button(key="gd-go").disabled and any("Name the guide" in i.value for i in app.info)
    app.text_input(key="gd-guide-path").set_value(str(folder)).run()
    _sweep_keeping(app, "pixel", 20, [3.0])
    table = _sweep_results(app)
    assert list(table["Series"]) == ["Autoguidance (your checkpoint)", "real held-out digits"]
    (tmp_path / "plain").mkdir()
    unconditional = tmp_path / "plain" / "unet"
    shutil.copytree(
        load_registry().model("mnist-ddpm-linear").path, unconditional, ignore=shutil.ignore_patterns("run")
    )
    app.text_input(key="gd-guide-path").set_value(str(unconditional)).run()
    app.button(key="gd-go").click().run()
    assert not app.exception and any("cannot guide MNIST, class-conditional" in e.value for e in app.error)
    assert not app.warning and len(_sweep_results(app)) == 2  # the sweep shown before stays, not "stopped"


def test_the_exact_mixture_measures_each_method_and_draws_samples_over_the_densities(app):
    app.multiselect(key="gx-methods").set_value(["cfg", "auto", "cfg++"])
    app.multiselect(key="gx-scales").set_value([1.0, 4.0])
    app.multiselect(key="gx-lambdas").set_value([0.6])
    app.select_slider(key="gx-n").set_value(500)
    app.button(key="gx-go").click().run()
    assert not app.exception and not app.error
    rows = table(app, "Off support")
    assert list(rows["Series"]) == ["exact draws", "CFG", "CFG", "Autoguidance", "Autoguidance", "CFG++"]
    truth, cfg4 = rows.iloc[0], rows.iloc[2]
    assert abs(truth["Off support"] - 0.01) < 0.012 and cfg4["Off support"] > truth["Off support"]
    assert cfg4["Coverage"] < rows.iloc[1]["Coverage"]  # w = 4 leaves part of the class out
    titles = [a["text"] for f in figures(app) for a in f["layout"].get("annotations", [])]
    assert "exact draws of A" in titles and "CFG<br>w = 4" in titles and "CFG++<br>λ = 0.6" in titles
    assert "p(x | c)<sup>w</sup> p(x)<sup>1−w</sup>" in titles and "Autoguidance at w = 4" in titles
    app.radio(key="gx-class").set_value(1).run()
    assert any("other settings" in c.value for c in app.caption) and not app.exception


def test_the_fields_follow_the_chosen_method(app):
    for method, third in (("auto", "guided: Autoguidance w = 3"), ("apg", "guided: APG w = 3 (eta 0, beta 0)")):
        app.selectbox(key="gd-field-method").set_value(method).run()
        assert not app.exception
        titles = [a["text"] for a in figures(app)[-1]["layout"]["annotations"]]
        assert titles[2] == third
    assert titles[1] == "unconditional"
    app.selectbox(key="gd-field-method").set_value("auto").run()
    assert [a["text"] for a in figures(app)[-1]["layout"]["annotations"]][1] == "guide (weaker model): class 3"
    app.selectbox(key="gd-field-method").set_value("cfg++").run()
    assert not app.exception and any("20-step grid" in c.value for c in app.caption)


CONTROLS = {  # the widgets of a tab's settings (prefix-name), by their kind
    "radio": ("source", "class"),
    "selectbox": ("sampler",),
    "slider": ("steps", "apg-eta", "rescale-phi"),
    "select_slider": ("n-latent", "n", "blur", "interval"),
    "multiselect": ("methods", "scales", "lambdas"),
}


def _controls(at: AppTest, prefix: str) -> dict[str, object]:
    keys = {kind: {f"{prefix}-{name}" for name in names} for kind, names in CONTROLS.items()}
    return {w.key: w.value for kind in keys for w in at.get(kind) if w.key in keys[kind]}


def _upload(at: AppTest, prefix: str, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=f"{prefix}-from-file").set_value((name, data, "text/csv")).run()
    assert not at.exception
    return at


def _stale(at: AppTest) -> bool:
    """Whether the tab says its results are for other settings than its controls build (its memo key differs)."""
    return any("results are for other settings" in c.value for c in at.caption)


def test_a_sweeps_table_puts_its_settings_back_and_the_tab_builds_the_same_key(app, media):  # noqa: F811
    app.radio(key="gd-source").set_value("latent").run()
    app.select_slider(key="gd-n-latent").set_value(20)
    app.selectbox(key="gd-sampler").set_value("euler")
    app.slider(key="gd-steps").set_value(6)
    app.multiselect(key="gd-methods").set_value(["interval", "apg", "cfg++", "auto"])
    app.multiselect(key="gd-scales").set_value([3.0])
    app.multiselect(key="gd-lambdas").set_value([0.4])
    app.select_slider(key="gd-interval").set_value((0.1, 2.0))
    app.slider(key="gd-apg-eta").set_value(0.25).run()
    app.button(key="gd-go").click().run()
    assert not app.exception and not app.error and not _stale(app)
    shown, csv = _controls(app, "gd"), _downloads(app, media)["gd-csv"]
    assert len(shown) == 10  # source, sampler, steps, samples, methods, scales, λ, interval, φ, APG's η

    app.radio(key="gd-source").set_value("pixel")
    app.selectbox(key="gd-sampler").set_value("heun")
    app.slider(key="gd-steps").set_value(12)
    app.multiselect(key="gd-methods").set_value(["cfg", "rescale"])
    app.multiselect(key="gd-scales").set_value([1.0, 2.0]).run()
    assert _stale(app)
    _upload(app, "gd", "guidance_sweep.csv", csv)
    assert not _stale(app)  # the key the tab builds is the sweep's own again
    assert _controls(app, "gd") == shown
    assert any("Restored from the file" in s.value for s in app.success) and not app.warning and not app.error


def test_an_exact_studys_table_puts_its_settings_back_and_a_file_of_another_kind_gets_a_sentence(app, media):  # noqa: F811
    app.radio(key="gx-class").set_value(1)
    app.selectbox(key="gx-sampler").set_value("euler")
    app.slider(key="gx-steps").set_value(10)
    app.select_slider(key="gx-n").set_value(500)
    app.select_slider(key="gx-blur").set_value(1.0)
    app.multiselect(key="gx-methods").set_value(["cfg", "rescale", "auto"])
    app.multiselect(key="gx-scales").set_value([2.0])
    app.slider(key="gx-rescale-phi").set_value(0.5).run()
    app.button(key="gx-go").click().run()
    assert not app.exception and not app.error and not _stale(app)
    shown, csv = _controls(app, "gx"), _downloads(app, media)["gx-csv"]

    app.radio(key="gx-class").set_value(0)
    app.slider(key="gx-steps").set_value(20)
    app.select_slider(key="gx-blur").set_value(0.25)
    app.multiselect(key="gx-methods").set_value(["cfg"]).run()
    assert _stale(app)
    _upload(app, "gx", "guidance_exact.csv", csv)
    assert not _stale(app) and _controls(app, "gx") == shown
    assert not app.warning and not app.error

    _upload(app, "gd", "guidance_exact.csv", csv)  # the other tab's study
    assert "guidance_exact.csv holds the Exact 2-D mixture tab's study: load it in that tab." in [
        e.value for e in app.error
    ]
    rec = provenance.read(csv)[0]
    rec["study"]["series"][0]["scales"] = [2.0, 7.0]
    rec["study"]["series"][0]["guidance"]["interval"] = [0.3, 5.0]  # a CFG in an interval the tab does not offer
    rec["study"]["blur"] = 0.7
    _upload(app, "gx", "edited.json", json.dumps(rec).encode())
    warnings = [w.value for w in app.warning]
    assert "The file's interval (0.3, 5] is not one this tab offers." in warnings
    assert "The file's scales w 7 are not among this tab's; they were left out." in warnings
    assert "The file's guide's blur 0.7 is not one this page offers; it was left." in warnings
    assert app.multiselect(key="gx-methods").value == ["interval", "rescale", "auto"]
    rec["study"] = {**rec["study"], "page": "Guidance: what each method trades", "source": ["pixel"]}
    _upload(app, "gd", "odd.json", json.dumps(rec).encode())  # a hostile file: a sentence, no traceback
    assert any(e.value.endswith("is not one this tab samples.") for e in app.error)
    del rec["study"]
    _upload(app, "gx", "run.json", json.dumps(rec).encode())
    assert any("holds sampling runs, not a guidance study" in e.value for e in app.error) and not app.exception
