"""The Compare checkpoints page's Over training tab: its distances are read against a reference band of fresh data
at the checkpoints' own sample sizes (not a single 'floor'), and its two step controls say which steps they are."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data.images import uint8_to_tensor
from core.data.toy import TOY_SETS
from core.labs import provenance
from core.labs.compare import prdc_reference
from core.labs.toy import ToyRun, ToySettings
from core.metrics.images import classify, frechet_reference_band
from core.metrics.points import mmd, sliced_wasserstein
from core.metrics.prdc import prdc
from core.runs.writer import RunWriter
from tests.app.test_samplers_from_file import _downloads, media  # noqa: F401 (a fixture)
from tests.conftest import ROOT
from tests.zoo_fixtures import save_random_unet_checkpoint
from zoo.datasets import load_image_set
from zoo.loaders import load_model
from zoo.registry import load_registry

PAGE = str(ROOT / "app_pages" / "compare_checkpoints.py")


def _chart(at: AppTest, title: str) -> dict:
    """The plotly figure whose title starts with `title`."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in figures if f["layout"].get("title", {}).get("text", "").startswith(title))


def _bands(figure: dict) -> dict[str, tuple[float, float]]:
    """The shaded bands of a figure by their legend name: (bottom, top)."""
    return {s["name"]: (s["y0"], s["y1"]) for s in figure["layout"].get("shapes", []) if s.get("name")}


def _fresh_range(run: ToyRun, n: int, distance) -> tuple[float, float]:
    """The distance between two fresh draws of n points, ten times from the page's seed stream, by hand."""
    g = torch.Generator().manual_seed(20_000)
    values = [distance(run.fresh_data(n, g), run.fresh_data(n, g)) for _ in range(10)]
    return min(values), max(values)


def test_the_toy_models_checkpoints_are_read_against_fresh_data_at_their_own_size(app_env):
    at = AppTest.from_file(PAGE, default_timeout=300)
    run = ToyRun(TOY_SETS["moons"].cloud(5000, seed=0), ToySettings(), name="toy-1")
    run.train(1000)
    at.session_state["toy_run"] = run
    at.run()
    label = "toy-1 · this session"
    at.selectbox(key="ot-run").set_value(label).run()
    picked = at.multiselect(key=f"ot-steps-{label}")
    steps = at.number_input(key="ot-toy-steps")
    assert picked.label == "Checkpoints (training steps)" and steps.label == "Sampling steps"  # not both "Steps"
    picked.set_value([500, 750, 1000])
    at.number_input(key="ot-toy-n").set_value(1000).run()
    at.button(key="ot-toy-go").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["step"]) == [500, 750, 1000] and list(table.columns) == ["step", "SW2", "MMD", "seconds", "NFE"]

    bands = _bands(_chart(at, "Distance to fresh data"))
    sw2 = lambda a, b: sliced_wasserstein(a, b, projections=128, generator=torch.Generator().manual_seed(0))  # noqa: E731
    rbf = lambda a, b: mmd(a, b, max_points=2000, generator=torch.Generator().manual_seed(0))  # noqa: E731
    name = "two fresh data sets (1,000 each), range of 10 draws"
    assert bands[f"SW2: {name}"] == pytest.approx(_fresh_range(run, 1000, sw2), abs=1e-12)
    assert bands[f"MMD: {name}"] == pytest.approx(_fresh_range(run, 1000, rbf), abs=1e-12)
    # At another size data itself reads otherwise: the band must be drawn at the samples' own size
    assert _fresh_range(run, 2000, sw2) != pytest.approx(bands[f"SW2: {name}"], rel=1e-6)
    assert _fresh_range(run, 100, sw2)[0] > bands[f"SW2: {name}"][1]
    # A trained model is no closer to the data than data itself: no checkpoint lies below its band, which the
    # single fresh pair did (the tester's MMD of 0.015-0.021 under a 'floor' of 0.028)
    for column, key in (("SW2", "SW2"), ("MMD", "MMD")):
        assert (table[column] >= bands[f"{key}: {name}"][0]).all(), (column, table[column], bands)
    assert any(name in c.value and "A checkpoint inside its band" in c.value for c in at.caption)


@pytest.fixture
def random_run(app_env, tmp_path):
    """runs/rand/run: checkpoints at steps 10 and 20 of tiny MNIST-shaped UNets (untrained, weights of two seeds)."""
    writer = RunWriter(tmp_path / "runs" / "rand" / "run", {"recipe": "rand", "kind": "pixel"})
    for k, step in enumerate((10, 20)):
        writer.log({"step": step, "loss": 1.0 / step})
        save_random_unet_checkpoint(writer, step, seed=k)
    return "rand · runs folder"


def test_fd_lenet_over_training_is_read_against_real_digits_at_the_measured_size(random_run, app_zoo):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    at.selectbox(key="ot-run").set_value(random_run).run()
    at.number_input(key="ot-steps").set_value(2)
    at.slider(key="ot-batch").set_value(3)
    at.button(key="ot-go").click().run()
    at.slider(key="ot-n").set_value(100).run()
    at.button(key="ot-measure").click().run()
    assert not at.exception and not at.error
    figure = _chart(at, "FD-LeNet to held-out digits")
    ((name, band),) = _bands(figure).items()
    registry = load_registry(app_zoo)
    classifier = load_model(registry.model("mnist-lenet")).module
    held_out = load_image_set(registry.dataset("mnist"), "test").images
    train = load_image_set(registry.dataset("mnist"), "train", 5000).images
    reference = classify(classifier, uint8_to_tensor(held_out))[1]
    direct = frechet_reference_band(classify(classifier, uint8_to_tensor(train))[1], reference, 100)
    assert (
        name
        == f"FD-LeNet: real training digits against the held-out digits (100 vs {len(held_out):,}), range of 10 draws"
    )
    assert band == pytest.approx((direct.low, direct.high), rel=1e-9)
    # Random weights make noise, far from any digit: their FD lies well above what real digits read
    fd = [y for trace in figure["data"] if trace["name"] == "FD-LeNet" for y in trace["y"]]
    assert len(fd) == 2 and min(fd) > 2 * band[1] and np.isfinite(fd).all()
    # Precision, recall, density and coverage against the step, each with its SEs, and dotted what real training
    # digits read measured the same way: 100 of them against the same 100 held-out digits
    traces = {t["name"]: t for t in _chart(at, "Precision, recall, density and coverage")["data"]}
    real = prdc(prdc_reference(reference, 100), classify(classifier, uint8_to_tensor(train[:100]))[1])
    for name in ("precision", "recall", "density", "coverage"):
        values, errors = traces[name]["y"], traces[name]["error_y"]["array"]
        assert len(values) == len(errors) == 2 and all(e >= 0 for e in errors)
        assert all(0 <= v <= 1 for v in values) if name != "density" else all(v >= 0 for v in values)
        assert traces[f"{name}: real digits"]["y"] == [getattr(real, name)] * 2


def test_a_toy_model_with_few_training_steps_opens_with_its_sampling_steps_inside_its_t(app_env):
    """The sampling-steps box defaults to 32, over the range of a model trained with T = 10: it opens at 10, and a
    value kept from a model with a larger T is moved into range with a sentence."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    run = ToyRun(TOY_SETS["moons"].cloud(500, seed=0), ToySettings(T=10), name="toy-1")
    run.train(60)
    at.session_state["toy_run"] = run
    at.session_state["ot-toy-steps"] = 40  # kept from an earlier model
    at.run()
    at.selectbox(key="ot-run").set_value("toy-1 · this session").run()
    assert not at.exception and not at.error
    box = at.number_input(key="ot-toy-steps")
    assert box.value == 10 and box.max == 10
    assert [i.value for i in at.info if "Sampling steps was 40" in i.value] == [
        "Sampling steps was 40, beyond what the run's T = 10 allows: it is 10 now."
    ]


def test_the_over_training_downloads_carry_a_record_per_checkpoint(random_run, media):  # noqa: F811
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    at.selectbox(key="ot-run").set_value(random_run).run()
    at.number_input(key="ot-steps").set_value(2)
    at.number_input(key="ot-seed").set_value(6)
    at.slider(key="ot-batch").set_value(3)
    at.slider(key="ot-n").set_value(100).run()
    at.button(key="ot-measure").click().run()  # measured, not sampled: the table's records are the measure's
    assert not at.exception and not at.error
    records = provenance.read(_downloads(at, media)["ot-csv"], "checkpoints.csv")
    assert [r["model"]["spec"] for r in records] == ["rand @ step 10", "rand @ step 20"]
    assert all(r["model"]["weights_fingerprint"] and r["model"]["name"].startswith("local:") for r in records)
    assert [(r["settings"]["steps"], r["settings"]["seed"], r["settings"]["batch"]) for r in records] == [(2, 6, 1)] * 2
    at.button(key="ot-go").click().run()
    assert not at.exception and not at.error
    files = _downloads(at, media)
    for name in ("ot-png", "ot-csv"):  # now the rows' own sampling, in both
        records = provenance.read(files[name])
        assert [r["model"]["spec"] for r in records] == ["rand @ step 10", "rand @ step 20"]
        assert [(r["settings"]["seed"], r["settings"]["batch"]) for r in records] == [(6, 3)] * 2


def test_the_toy_models_over_training_downloads_carry_its_run_and_sampling(app_env, media):  # noqa: F811
    at = AppTest.from_file(PAGE, default_timeout=120)
    run = ToyRun(TOY_SETS["moons"].cloud(500, seed=0), ToySettings(), name="toy-1")
    run.train(500)
    at.session_state["toy_run"] = run
    at.run()
    at.selectbox(key="ot-run").set_value("toy-1 · this session").run()
    at.number_input(key="ot-toy-n").set_value(300)
    at.number_input(key="ot-toy-steps").set_value(8)
    at.number_input(key="ot-toy-seed").set_value(4).run()
    at.button(key="ot-toy-go").click().run()
    assert not at.exception and not at.error
    files = _downloads(at, media)
    for name in ("ot-toy-png", "ot-toy-csv"):
        (rec,) = provenance.read(files[name])
        s, study = rec["settings"], rec["study"]
        assert (s["sampler"], s["steps"], s["seed"], s["batch"], s["spacing"], s["clip"]) == (
            "heun",
            8,
            4,
            300,
            "trailing",
            False,
        )
        assert study["run"] == "toy-1" and study["checkpoints"] == [250, 500] and study["points"] == 300
