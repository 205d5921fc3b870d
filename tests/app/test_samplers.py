"""The Samplers page through AppTest, on small test models served by a test manifest (ATLAS_MANIFEST)."""

from __future__ import annotations

import io
import re

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data.images import gif_bytes, png_bytes
from core.diffusion.samplers import SAMPLERS
from core.diffusion.trajectory import TrajectoryRecorder
from core.labs.samplers import SamplerSettings, folder_settings, run_sampler
from tests.conftest import ROOT
from tests.zoo_fixtures import write_ddim_zoo
from ui.samplers.docs import doc_parts
from ui.samplers.figures import run_gif
from zoo.loaders import load_model
from zoo.registry import load_registry

PAGE = str(ROOT / "app_pages" / "samplers.py")


@pytest.fixture
def app(app_env):
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _generate(at: AppTest, **widgets) -> AppTest:
    for key, value in widgets.items():
        widget = next(
            w for kind in ("selectbox", "number_input", "slider", "toggle") for w in at.get(kind) if w.key == key
        )
        widget.set_value(value).run()
    at.button(key="smp-go").click().run()
    return at


def test_page_lists_ready_models_first_and_explains_the_default_sampler(app):
    assert not app.exception
    options = app.selectbox(key="smp-model").options
    assert options[0].startswith("Tiny") and "Needs the Hub" in options[-2]
    code = app.get("code")[0].value
    assert code.startswith("def dpmpp_2m(") and "old_denoised" in code and "Lu, Zhou" not in code  # no docstring
    assert any("DPM-Solver++" in m.value for m in app.markdown)
    assert any("frac{\\sigma'}{\\sigma}" in latex.value for latex in app.latex)  # the update rule as display maths


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_generates_on_a_small_model(app, name):
    at = _generate(app, **{"smp-sampler": name, "smp-steps": 3, "smp-batch": 2})
    assert not at.exception and not at.error
    assert at.subheader[0].value == f"{SAMPLERS[name].title}, 3 steps"
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Model calls (NFE)"]) == SAMPLERS[name].nfe(3)
    assert len(at.get("download_button")) == 2
    assert f"def {name}(" in at.get("code")[0].value  # the Maths and code tab follows the choice


def test_conditional_model_with_class_guidance_and_noise_switch_off(app):
    app.selectbox(key="smp-model").set_value("tiny-cond").run()
    at = _generate(app, **{"smp-sampler": "euler_ancestral", "smp-steps": 4, "smp-batch": 3, "smp-class": 7})
    assert not at.exception and not at.error
    assert at.slider(key="smp-cfg").value == 3.0
    at.toggle(key="smp-quiet").set_value(True).run()
    at.slider(key="smp-quiet-step").set_value(1).run()
    at.button(key="smp-go").click().run()
    assert not at.exception and not at.error
    assert at.toggle(key="smp-cap").value  # the cosine schedule starts below sigma 164 by default


@pytest.mark.parametrize("method", ["rescale", "apg", "cfg++", "auto"])
def test_every_guidance_method_samples_a_conditional_model_and_the_compare_and_grid_tabs_follow(app, method):
    app.selectbox(key="smp-model").set_value("tiny-cond").run()
    app.selectbox(key="smp-class").set_value(3).run()
    app.selectbox(key="smp-guidance").set_value(method).run()
    if method == "auto":
        assert app.selectbox(key="smp-guide").options == ["Tiny conditional guide"]  # same shape and classes only
    at = _generate(app, **{"smp-sampler": "heun", "smp-steps": 3, "smp-batch": 2})
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Model calls (NFE)"]) == SAMPLERS["heun"].nfe(3)
    title = {
        "rescale": "CFG + rescale w = 3 (phi 0.7)",
        "apg": "APG w = 3 (eta 0, beta -0.5)",
        "cfg++": "CFG++ λ = 0.6",
    }
    expected = title.get(method, "Autoguidance w = 3 by tiny-cond-guide")
    assert at.subheader[0].value == f"Heun, 3 steps, class 3 · {expected}"
    at.multiselect(key="cmp-samplers").set_value(["euler"]).run()
    at.multiselect(key="cmp-steps").set_value([5]).run()
    at.slider(key="cmp-n").set_value(2).run()
    at.button(key="cmp-go").click().run()
    assert not at.exception and not at.error
    assert len([c for image in at.get("image") for c in image.captions if "NFE" in c]) == 1


def test_compare_grid_labels_cells_with_nfe_time_and_classifier_score(app):
    app.selectbox(key="smp-model").set_value("tiny-uncond").run()
    app.multiselect(key="cmp-samplers").set_value(["euler", "heun"]).run()
    app.multiselect(key="cmp-steps").set_value([5]).run()
    app.multiselect(key="cmp-models").set_value(["tiny-cond"]).run()
    app.slider(key="cmp-n").set_value(2).run()
    app.button(key="cmp-go").click().run()
    assert not app.exception and not app.error
    captions = [c for image in app.get("image") for c in image.captions if "NFE" in c]
    assert len(captions) == 4  # 2 checkpoints x 2 samplers x 1 step count
    assert any("NFE 9" in c for c in captions) and all("classes" in c for c in captions)
    assert any(m.value == "**5 steps**" for m in app.markdown)  # a header over each step count's column
    assert any("mean confidence" in c.value for c in app.caption)  # what the classifier's reading means


def test_too_big_a_comparison_is_refused(app):
    app.multiselect(key="cmp-samplers").set_value(list(SAMPLERS)).run()
    app.multiselect(key="cmp-steps").set_value([5, 10, 20, 50, 100]).run()
    app.button(key="cmp-go").click().run()
    assert not app.exception and "compare at most" in app.error[0].value


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        ("../x", "not a Hugging Face repo id"),
        ("my org/model", "not a Hugging Face repo id"),
        ("https://huggingface.co/google/ddpm-cifar10-32", "not a Hugging Face repo id"),
        ("someone/never-seen", "needs a connection"),
    ],
)
def test_typed_repo_ids_fail_with_a_sentence(app, repo, message):
    app.selectbox(key="smp-model").set_value("__typed__").run()
    app.text_input(key="smp-model-repo").set_value(repo).run()
    assert not app.exception and message in app.error[0].value
    assert app.info  # the Generate tab says what to do instead


def test_unavailable_zoo_model_says_it_needs_a_connection(app):
    app.selectbox(key="smp-model").set_value("hub-only").run()
    assert not app.exception and "needs a connection" in app.error[0].value


def test_a_stopped_run_shows_where_it_got_to(app):
    app.session_state["smp-partial"] = (3, 20, [torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()] * 3)
    app.run()
    assert "Stopped at step 3 of 20" in app.warning[0].value


def test_exports_are_valid_png_and_gif():
    grid = (torch.rand(40, 40, 3) * 255).to(torch.uint8).numpy()
    assert Image.open(io.BytesIO(png_bytes(grid))).format == "PNG"
    gif = Image.open(io.BytesIO(gif_bytes([grid, grid[::-1]])))
    assert gif.format == "GIF" and gif.n_frames == 2
    recorder = TrajectoryRecorder(total_steps=1)
    from core.diffusion.samplers import Step

    for i in range(3):
        recorder(Step(i, 1.0, 0.0, torch.zeros(2, 1, 8, 8), torch.full((2, 1, 8, 8), float(i))))
    gif = Image.open(io.BytesIO(run_gif(recorder)))  # every recorded step, x_t, x_0 and noise side by side
    assert gif.n_frames == 3 and gif.width > 3 * gif.height


def test_image_k_of_a_batch_is_reproduced_alone_with_seed_plus_k(app_env):
    from core.labs.samplers import SamplerSettings, run_sampler
    from ui.common.cache import zoo_model

    model = zoo_model("tiny-uncond", "cpu")
    batch = run_sampler(model, SamplerSettings(sampler="euler_ancestral", steps=4, seed=5, batch=3)).images
    alone = run_sampler(model, SamplerSettings(sampler="euler_ancestral", steps=4, seed=6, batch=1)).images
    torch.testing.assert_close(batch[1:2], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batch[0], batch[1])
    clipped = run_sampler(model, SamplerSettings(sampler="euler", steps=3, batch=2, clip=True)).images
    assert float(clipped.abs().max()) <= 1 + 1e-5  # the last step lands on the clipped x_0 estimate


def test_throttle_lets_one_update_through_per_interval_and_always_the_final_one():
    from ui.common.live import Throttle

    throttle = Throttle(3600)
    assert [i for i in range(50) if throttle.ready(final=i == 49)] == [0, 49]
    quick = Throttle(0.0)
    assert all(quick.ready() for _ in range(5))


def test_ddim_offers_the_noise_switch_off_only_when_its_eta_draws_noise(app):
    app.selectbox(key="smp-sampler").set_value("ddim").run()
    toggles = {t.key for t in app.toggle}
    assert "smp-quiet" not in toggles and any("deterministic" in c.value for c in app.caption)  # eta = 0
    app.slider(key="smp-ddim-eta").set_value(0.5).run()
    assert any("stochastic" in c.value for c in app.caption)
    app.toggle(key="smp-quiet").set_value(True).run()
    at = _generate(app, **{"smp-steps": 4, "smp-batch": 2, "smp-quiet-step": 2})
    assert not at.exception and not at.error and at.subheader[0].value == "DDIM, 4 steps"
    assert at.session_state["memo:smp-result"].value.result.settings.noise_until == 2


def test_a_finished_run_can_be_stepped_through_and_is_marked_stale_when_the_settings_change(app):
    at = _generate(app, **{"smp-sampler": "euler", "smp-steps": 6, "smp-batch": 2})
    frames = at.session_state["memo:smp-result"].value.result.recorder.frames
    step = at.select_slider(key="smp-frame")
    assert step.value == frames[-1].index and len(step.options) == len(frames) == 6
    step.set_value(0).run()
    assert not at.exception and "σ =" in at.select_slider(key="smp-frame").format_func(0)
    assert not any("From earlier settings" in i.value for i in at.info)
    at.toggle(key="smp-play").set_value(True).run()  # the recorded steps as one animated GIF
    assert not at.exception and at.session_state["memo:smp-result"].value.gif[:6] == b"GIF89a"
    at.number_input(key="smp-steps").set_value(4).run()  # not generated yet: the shown run is the old one
    assert any("From earlier settings" in i.value for i in at.info)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_maths_prose_holds_no_raw_tex(name):
    """The Maths tab renders a docstring's prose as markdown, where only $...$ is typeset: a bare x_0 or
    x_{t-1} outside it reaches the reader as raw TeX."""
    for kind, text in doc_parts(SAMPLERS[name].fn.__doc__):
        if kind == "text":
            prose = re.sub(r"`[^`]*`", "", re.sub(r"\$[^$]+\$", "", text))  # typeset maths and code left out
            assert not re.findall(r"[A-Za-z]_\{?\w|\\[a-zA-Z]+|\^", prose), prose


@pytest.fixture
def bundled(monkeypatch):
    """The page on the real manifest, offline: the bundled MNIST models."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return AppTest.from_file(PAGE, default_timeout=300).run()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_runs_on_the_bundled_flow_matching_model(bundled, name):
    at = _generate(bundled, **{"smp-model": "mnist-flow", "smp-sampler": name, "smp-steps": 4, "smp-batch": 2})
    assert not at.exception and not at.error
    assert int({m.label: m.value for m in at.metric}["Model calls (NFE)"]) == SAMPLERS[name].nfe(4)
    images = at.session_state["memo:smp-result"].value.result.images
    assert images.shape == (2, 1, 28, 28) and bool(images.isfinite().all())


def test_a_sampler_that_hands_over_to_another_shows_that_ones_code_too():
    from ui.samplers.docs import code_shown

    fns = {s.fn.__name__: s.fn for s in SAMPLERS.values()}
    ddim = code_shown(SAMPLERS["ddim"].fn, fns)
    assert ddim.startswith("def ddim(") and "return euler_ancestral(" in ddim
    assert ddim.count("def euler_ancestral(") == 1 and "ancestral_split" in ddim  # the update that runs
    for name in ("dpmpp_2m", "heun"):
        assert code_shown(SAMPLERS[name].fn, fns).count("\ndef ") == 0  # its own code only
    ancestral = code_shown(SAMPLERS["euler_ancestral"].fn, fns)  # its own, then the split it alone (nearly) calls
    assert ancestral.count("\ndef ") == 1 and "def ancestral_split(" in ancestral


def test_every_sampler_option_is_named_like_its_neighbours_and_explained(app):
    """Each option's control carries the option's label (a capital first, as Steps and Spacing do), not its
    keyword (DDPM's "variance" was the one lower-case, unexplained label on the page), and a help text."""
    seen = []
    for name, spec in SAMPLERS.items():
        app.selectbox(key="smp-sampler").set_value(name).run()
        for option in spec.options:
            (widget,) = [
                w for kind in ("slider", "selectbox") for w in app.get(kind) if w.key == f"smp-{name}-{option.name}"
            ]
            assert widget.label == option.label and widget.label[0].isupper(), (name, widget.label)
            assert len(widget.help) > 20, (name, widget.label)
            seen.append(widget.label)
    assert {
        "Variance",
        "Eta (η)",
        "Order",
        "Churn (S_churn)",
        "Noise inflation (S_noise)",
        "D'' weight",
        "B(h)",
        "Corrector (UniC)",
        "Step weights",
        "Analytic first step (AFS)",
        "Step along",
    } == set(seen)
    app.selectbox(key="smp-sampler").set_value("ddpm").run()
    assert "posterior" in app.selectbox(key="smp-ddpm-variance").help and not app.exception


def test_generate_says_what_a_run_would_take_and_refuses_one_over_the_limit(app, monkeypatch):
    from core import cost

    assert any("of sampling on this server" in c.value for c in app.caption)
    assert not app.button(key="smp-go").disabled
    monkeypatch.setattr(cost, "_rates", {})
    monkeypatch.setattr(cost, "_warm", set())
    for _ in range(2):  # as if the model had just run at 1 FLOP/s at 16 images a call (the first is a warm-up)
        cost.observe("tiny-uncond", "cpu", 16, 1.0, 1.0)
    app.selectbox(key="smp-model").set_value("tiny-uncond").run()
    assert any("over its limit" in w.value for w in app.warning) and app.button(key="smp-go").disabled
    assert not app.exception and not app.error


def test_a_run_past_the_limit_per_job_stops_and_shows_where_it_got_to(app, monkeypatch):
    from types import SimpleNamespace

    from core.training import budget

    ticks = iter(range(10**6))
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: 0.4 * next(ticks)))  # 0.4 s a look
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    at = _generate(app, **{"smp-sampler": "euler", "smp-steps": 20, "smp-batch": 2})
    assert not at.exception and not at.error
    warning = next(w.value for w in at.warning if "Stopped at step" in w.value)
    assert "Stopped at step 1 of 20" in warning and "limit of 1 s per job" in warning
    assert not at.subheader and "memo:smp-result" not in at.session_state  # no finished run is claimed


@pytest.mark.parametrize("spacing", ["uniform-time", "log-snr"])
def test_the_new_spacings_run_and_plan_what_their_names_say(app, spacing):
    import json

    import numpy as np

    from tests.helpers import plotly_array

    at = _generate(app, **{"smp-spacing": spacing, "smp-steps": 6, "smp-batch": 2})
    assert not at.exception and not at.error
    planned = next(
        t for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"] if t.get("name") == "σ planned"
    )
    sigmas = plotly_array(planned["y"])
    sigmas = sigmas[sigmas > 0]
    assert len(sigmas) == 6
    if spacing == "log-snr":
        assert np.allclose(np.diff(np.log(sigmas)), np.diff(np.log(sigmas))[0], rtol=1e-6)


def test_a_typed_grid_runs_as_typed_and_an_empty_or_bad_one_gets_a_sentence(app):
    import json

    from tests.helpers import plotly_array

    app.selectbox(key="smp-spacing").set_value("typed").run()
    assert not app.exception
    app.button(key="smp-go").click().run()
    assert not app.exception and any("Type the grid" in e.value for e in app.error)
    app.text_input(key="smp-typed").input("20, 4, 1, 0.2").run()
    assert app.number_input(key="smp-typed-steps").value == 4
    app.slider(key="smp-batch").set_value(2).run()
    app.button(key="smp-go").click().run()
    assert not app.exception and not app.error
    assert app.subheader[0].value == "DPM-Solver++(2M), 4 steps"
    assert int({m.label: m.value for m in app.metric}["Model calls (NFE)"]) == 4
    planned = next(
        t for c in app.get("plotly_chart") for t in json.loads(c.proto.spec)["data"] if t.get("name") == "σ planned"
    )
    assert [v for v in plotly_array(planned["y"]).tolist() if v > 0] == [20, 4, 1, 0.2]
    app.text_input(key="smp-typed").input("20, 40").run()
    assert not app.exception and any("decreasing" in e.value for e in app.error)
    app.text_input(key="smp-typed").input("1e6, 1").run()
    assert not app.exception and any("above this model" in e.value for e in app.error)


def test_a_grid_searched_for_the_model_beats_the_hand_made_ones_and_is_used_in_one_click(app):
    import json

    from core.diffusion.grids import custom_sigmas
    from tests.helpers import plotly_array

    app.number_input(key="smp-steps").set_value(4).run()
    app.button(key="smp-grid-go").click().run()
    assert not app.exception and not app.error
    rows = next(d.value for d in app.dataframe if "RMS distance to the teacher" in d.value.columns)
    errors = dict(zip(rows["Grid"], rows["RMS distance to the teacher"], strict=True))
    assert set(errors) == {"trailing", "karras", "log-snr", "searched"}
    assert errors["searched"] <= min(errors["trailing"], errors["karras"], errors["log-snr"])  # from the best
    searched = rows[rows["Grid"] == "searched"].iloc[0]["σ"]
    app.button(key="smp-grid-use").click().run()
    assert app.selectbox(key="smp-spacing").value == "typed" and app.text_input(key="smp-typed").value == searched
    app.slider(key="smp-batch").set_value(2).run()
    app.button(key="smp-go").click().run()
    assert not app.exception and not app.error
    planned = next(
        t for c in app.get("plotly_chart") for t in json.loads(c.proto.spec)["data"] if t.get("name") == "σ planned"
    )
    assert [v for v in plotly_array(planned["y"]).tolist() if v > 0] == custom_sigmas(searched)[:-1].tolist()


def test_the_grid_search_asks_for_a_deterministic_sampler(app):
    app.selectbox(key="smp-sampler").set_value("euler_ancestral").run()
    assert not app.exception and any("draws fresh noise" in i.value for i in app.info)


def test_the_code_tab_shows_the_helpers_a_sampler_alone_calls(app):
    app.selectbox(key="smp-sampler").set_value("unipc").run()
    code = app.get("code")[0].value
    assert "def _unipc_step(" in code and "def _phi_weights(" in code  # the corrector's maths is in the helper
    assert "def _report(" not in code  # plumbing every sampler shares is left out
    app.selectbox(key="smp-sampler").set_value("deis").run()
    assert "def deis_coefficients(" in app.get("code")[0].value


@pytest.fixture
def ddim_app(app_env, monkeypatch):
    """The page over the app zoo and two pipelines whose scheduler configs diffusers' DDIMScheduler wrote."""
    manifest = write_ddim_zoo(app_env)
    monkeypatch.setenv("ATLAS_MANIFEST", str(manifest))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="smp-model").set_value("tiny-ddim-leading").run()
    assert not at.exception and not at.error
    return at, manifest


def test_a_folder_with_its_own_scheduler_config_starts_from_it_and_samples_as_its_pipeline(ddim_app):
    at, manifest = ddim_app
    assert not at.warning  # every field of this config is followed
    assert at.selectbox(key="smp-sampler").value == "ddim" and at.selectbox(key="smp-spacing").value == "leading"
    assert at.slider(key="smp-ddim-eta").value == 0.0 and at.selectbox(key="smp-ddim-direction").value == "model"
    assert at.number_input(key="smp-offset").value == 1 and at.toggle(key="smp-to-zero").value
    assert at.toggle(key="smp-clip").value and at.number_input(key="smp-clip-range").value == 1.0
    assert not at.toggle(key="smp-threshold").value and not at.toggle(key="smp-one-more").value
    caption = (
        "From the folder's scheduler_config.json (DDIMScheduler): DDIM, leading spacing, steps_offset 1, clip x0 "
        "to ±1, eta 0.0. The settings below start there."
    )
    assert caption in [c.value for c in at.caption]
    assert not any(c.value.startswith("Changed from the folder's") for c in at.caption)
    _generate(at, **{"smp-steps": 3, "smp-batch": 2})
    assert not at.exception and not at.error
    shown = at.session_state["memo:smp-result"].value.result
    model = load_model(load_registry(manifest).model("tiny-ddim-leading"))
    assert model.scheduler is not None and model.scheduler.steps_offset == 1
    expected = run_sampler(model, folder_settings(model, SamplerSettings(steps=3, batch=2, seed=0)))
    assert torch.equal(shown.images, expected.images)  # the sidebar's defaults are the folder's, whole
    assert shown.settings.max_sigma is None and shown.settings.clip and shown.settings.steps_offset == 1


def test_the_folder_defaults_follow_the_model_and_keep_what_was_changed_for_it(ddim_app):
    at, _ = ddim_app
    at.selectbox(key="smp-sampler").set_value("euler").run()
    at.number_input(key="smp-steps").set_value(5).run()  # another setting: the sampler changed stays
    assert at.selectbox(key="smp-sampler").value == "euler"
    assert "Changed from the folder's: sampler." in [c.value for c in at.caption]
    at.selectbox(key="smp-model").set_value("tiny-uncond").run()  # a zoo model: the Atlas's defaults
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="smp-sampler").value == "dpmpp_2m" and at.selectbox(key="smp-spacing").value == "trailing"
    assert not any("scheduler_config.json" in c.value for c in at.caption)
    assert [t.key for t in at.toggle if t.key in ("smp-offset", "smp-threshold", "smp-to-zero")] == []
    at.selectbox(key="smp-model").set_value("tiny-ddim-linspace").run()  # a field the Atlas does not follow
    assert not at.exception and not at.error
    assert at.selectbox(key="smp-sampler").value == "ddim" and at.selectbox(key="smp-spacing").value == "linspace"
    (warning,) = at.warning
    assert warning.value.startswith("Not followed: timestep_spacing linspace: diffusers' DDIM steps")
