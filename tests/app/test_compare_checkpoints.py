"""The Compare checkpoints page with checkpoints of people's own: a run's checkpoints, local folders, the Over
training tab for a pixel run (rows per step, FD-LeNet against the step) and for the Toy lab's model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.data.images import tile, to_uint8
from core.data.toy import TOY_SETS
from core.labs import compare, provenance
from core.labs.samplers import folder_settings, run_sampler
from core.labs.toy import ToyRun, ToySettings
from core.runs.writer import RunWriter
from tests.app.test_samplers_from_file import _downloads, _pixels, media  # noqa: F401 (a fixture)
from tests.conftest import ROOT
from tests.helpers import tiny_unet
from tests.zoo_fixtures import HOSTILE_UNET, save_random_unet_checkpoint, write_ddim_folder, write_ddim_zoo
from ui.common.cache import local_model
from ui.compare_checkpoints import sources, state

PAGE = str(ROOT / "app_pages" / "compare_checkpoints.py")
LOGS = str(ROOT / "app_pages" / "training_logs.py")
RUN = "my-run · runs folder"
TRAINED = "trained · runs folder"
TRAINED_STEPS = [30, 60, 90]


@pytest.fixture
def runs(app_env, tmp_path):
    """runs/my-run/run: a run log with sample grids and checkpoints at steps 100, 200 and 300, written by the
    trainer's own writers (weights differ per step)."""
    writer = RunWriter(tmp_path / "runs" / "my-run" / "run", {"recipe": "my-run", "kind": "pixel"})
    for k, step in enumerate((100, 200, 300)):
        writer.log({"step": step, "loss": 1 / step})
        writer.save_samples(step, tile(to_uint8(torch.rand(4, 1, 28, 28) * 2 - 1)))
        save_random_unet_checkpoint(writer, step, seed=k)
    return tmp_path / "runs"


def _small(at: AppTest, prefix: str) -> None:
    at.number_input(key=f"{prefix}-steps").set_value(2)
    at.slider(key=f"{prefix}-batch").set_value(3)


def test_side_by_side_takes_run_checkpoints_and_local_folders_with_a_sentence_for_bad_ones(runs, tmp_path):
    outside = tmp_path / "outside"
    tiny_unet(seed=1, channels=1, size=28).save_pretrained(outside)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.multiselect(key="ck-models").set_value(["tiny-uncond"]).run()
    at.selectbox(key="ck-run").set_value(RUN).run()
    at.multiselect(key=f"ck-steps-{RUN}").set_value([300]).run()
    at.text_area(key="ck-local").set_value(f"{outside}\n{runs}/my-run/run/checkpoints/nothing").run()
    assert not at.exception and not at.warning  # four named
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and "reads checkpoints only from" in errors[0]  # outside the roots: a sentence
    assert "There is nothing at" in errors[1]
    at.multiselect(key=f"ck-steps-{RUN}").set_value([100, 300]).run()
    assert any("at most 4 at once" in w.value for w in at.warning)  # five named: the first four are used
    assert len(at.error) == 1
    _small(at, "ck")
    at.button(key="ck-go").click().run()
    assert not at.exception and len(at.get("image")) == 3
    assert any("my-run @ step 300" in m.value for m in at.markdown)
    at.slider(key="ck-n").set_value(100).run()
    at.button(key="ck-measure").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["checkpoint"])[:3] == ["Tiny unconditional", "my-run @ step 100", "my-run @ step 300"]
    assert_sane_prdc(table)
    keys = [b.proto.label for b in at.get("download_button")]
    assert keys == ["Download the grid (PNG)", "Download the table (CSV)"]


def assert_sane_prdc(table) -> None:
    """The quality table holds precision, recall, density and coverage, each beside its SE, for every row, the real
    digits' included: shares in [0, 1], density above 0, SEs small and not negative; real digits are diverse."""
    measures = ["precision", "recall", "density", "coverage"]
    columns = list(table.columns)
    at = columns.index("± (bootstrap SE)") + 1  # beside FD-LeNet and its SE
    assert columns[at : at + 8] == [c for m in measures for c in (m, f"{m} SE")]
    assert table[["precision", "recall", "coverage"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (table["density"] > 0).all()
    assert table[[f"{m} SE" for m in measures]].apply(lambda c: c.between(0, 0.2)).all().all()
    real = table[table["checkpoint"].str.startswith("real digits (FD-LeNet ")]
    assert len(real) == 1 and (real[["recall", "coverage"]] > 0.5).all().all()


def _stopped_after(monkeypatch, checkpoints: int) -> None:
    """A Measure as a Stop ends it: the run ends (as Streamlit ends it, at a redraw) while the checkpoint after
    the first `checkpoints` is sampled."""
    real_measure, done = state.measure, []

    def measure(*args, **kwargs):
        if len(done) == checkpoints:
            raise StopException()
        done.append(real_measure(*args, **kwargs))
        return done[-1]

    monkeypatch.setattr(state, "measure", measure)


def _measure(at: AppTest) -> AppTest:
    _small(at, "ck")
    at.slider(key="ck-n").set_value(100).run()
    at.button(key="ck-measure").click().run()
    assert not at.exception
    return at


def test_a_measure_draws_each_checkpoint_as_it_is_done_and_a_stop_says_how_far_it_got(app_env, monkeypatch):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert len(at.multiselect(key="ck-models").value) == 2
    _stopped_after(monkeypatch, 1)
    _measure(at)  # the run that the Stop ends, while the second checkpoint is measured
    live = at.dataframe[0].value  # drawn before the Stop
    assert len(live) == 2 and live["checkpoint"][0] == "Tiny unconditional"  # and real digits measured alike
    assert live["checkpoint"][1].startswith("real digits (")
    at.run()  # the Stop's own run
    assert [w.value for w in at.warning] == ["Stopped after 1 of 2 checkpoints; press **Measure** to measure them all."]
    assert list(at.dataframe[0].value["checkpoint"]) == list(live["checkpoint"])
    monkeypatch.setattr(state, "measure", compare.measure)
    _measure(at)
    assert not at.warning and len(at.dataframe[0].value) == 3  # both, and real digits' own distance


def test_a_measure_stopped_before_any_checkpoint_says_so(app_env, monkeypatch):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    _stopped_after(monkeypatch, 0)
    _measure(at)
    at.run()
    assert [w.value for w in at.warning] == [
        "Stopped before any checkpoint was measured; press **Measure** to measure them all."
    ]
    assert not at.dataframe


def _stored_images(at: AppTest, runs, run: str, steps) -> list[torch.Tensor]:
    keys = [f"ot-result-checkpoint:{runs / run / 'run' / 'checkpoints' / f'step_{s:07d}'}" for s in steps]
    return [at.session_state[f"memo:{k}"].value.images for k in keys]


def test_over_training_samples_a_row_per_step_and_fd_lenet_falls_with_the_step(trained):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="ot-run").set_value(TRAINED).run()
    assert at.multiselect(key=f"ot-steps-{TRAINED}").value == TRAINED_STEPS  # spread over training by default
    _small(at, "ot")
    at.button(key="ot-go").click().run()
    assert not at.exception
    rows_shown = [m.value for m in at.markdown if m.value.startswith("**step")]
    assert rows_shown == [f"**step {s}**" for s in TRAINED_STEPS]
    a, b, c = _stored_images(at, trained, "trained", TRAINED_STEPS)
    assert not torch.equal(a, b) and not torch.equal(b, c)  # each row from its own checkpoint
    at.slider(key="ot-n").set_value(100).run()
    at.button(key="ot-measure").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3  # FD-LeNet, PRDC and the class shares against the step
    rows = at.tabs[1].dataframe[-1].value  # the Over training tab's quality table
    assert_sane_prdc(rows)
    assert list(rows["checkpoint"])[:3] == [f"step {s}" for s in TRAINED_STEPS] and (rows["FD-LeNet"][:3] > 0).all()
    # Real training: each later checkpoint is closer to the held-out digits than the first, by more than the two
    # bootstrap SEs together (measured: FD 976, 919, 912 with SE about 8 at 100 samples, 2 steps).
    fd, se = list(rows["FD-LeNet"][:3]), list(rows["± (bootstrap SE)"][:3])
    assert all(fd[0] - fd[k] > se[0] + se[k] for k in (1, 2)), (fd, se)


def test_over_training_compares_the_toy_labs_checkpoints_by_sw2_and_both_distances_fall(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120)
    # A learning rate and batch low enough that the model is still learning at the first kept checkpoint (with the
    # defaults it is within the fresh-data band by step 250): SW2 0.221, 0.167, 0.155 and MMD 0.045, 0.035, 0.028.
    run = ToyRun(TOY_SETS["moons"].cloud(2000, seed=0), ToySettings(lr=1e-3, batch_size=128), name="toy-1")
    run.train(750)
    at.session_state["toy_run"] = run
    at.run()
    label = "toy-1 · this session"
    at.selectbox(key="ot-run").set_value(label).run()
    assert at.multiselect(key="ot-steps-toy-1 · this session").value == [250, 500, 750]
    at.number_input(key="ot-toy-n").set_value(1000).run()
    at.button(key="ot-toy-go").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["step"]) == [250, 500, 750] and (table["SW2"] > 0).all()
    assert table["SW2"].is_monotonic_decreasing and table["MMD"].is_monotonic_decreasing, table
    assert table["SW2"].iloc[-1] < 0.8 * table["SW2"].iloc[0]
    assert len(at.get("download_button")) == 2


def test_training_logs_lists_a_runs_checkpoints_beside_its_grids(runs):
    at = AppTest.from_file(LOGS, default_timeout=120).run()
    at.multiselect(key="logs-runs").set_value(["my-run · runs folder"]).run()
    assert not at.exception
    assert any(h.value == "Checkpoints" for h in at.subheader)
    assert any("Checkpoint at step 300: `step_0000300/`" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["step"]) == [100, 200, 300] and list(table["sample grid"]) == ["yes"] * 3
    assert (table["MB"] > 0).all()
    assert at.button(key="logs-compare-my-run").label == "Compare these checkpoints over training"


@pytest.mark.parametrize(
    "typed",
    ["/", "/etc/passwd", "../../..", "~", "runs/\x00x", "/" + "x" * 1100, "C:\\Windows", "model.ckpt", " \n \n"],
)
def test_any_typed_path_gets_a_sentence_and_the_zoo_checkpoints_still_sample(app_env, typed):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_area(key="ck-local").set_value(typed).run()
    assert not at.exception
    _small(at, "ck")
    at.button(key="ck-go").click().run()
    assert not at.exception and len(at.get("image")) == 2  # the two zoo models are sampled all the same
    assert len(at.error) == (0 if not typed.strip() else 1)


def test_training_logs_offers_a_page_trainings_checkpoints_as_a_zip_and_its_comparison(app_env):
    at = AppTest.from_file(LOGS, default_timeout=120)
    run = ToyRun(TOY_SETS["moons"].cloud(1000, seed=0), ToySettings(width=32), name="toy-1")
    run.train(260)
    at.session_state["session_runs"] = [run.log]
    at.session_state["toy_run"] = run
    at.run()
    at.multiselect(key="logs-runs").set_value(["toy-1 · this session"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["step"]) == [250, 260] and list(table["weights"]) == ["in memory"] * 2
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the run with its checkpoints (zip)" in labels
    assert at.button(key="logs-compare-toy-1").label == "Compare these checkpoints over training"


def test_only_the_newest_page_trainings_keep_their_checkpoints_in_memory():
    def script() -> None:
        import streamlit as st

        from core.data.toy import TOY_SETS
        from core.labs.toy import ToyRun, ToySettings
        from ui.common import session_runs

        for k in range(5):
            run = ToyRun(TOY_SETS["moons"].cloud(200, seed=k), ToySettings(width=16), name=f"toy-{k}")
            run.train(250)
            session_runs.add(run.log)
        st.text(repr([len(r.snapshots.states) for r in session_runs.session_runs()]))
        st.text(repr([len(r.checkpoints) for r in session_runs.session_runs()]))

    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception
    assert [t.value for t in at.text] == ["[0, 0, 1, 1, 1]"] * 2  # weights and their listing both let go


def test_over_training_keeps_each_runs_rows_apart_and_says_when_they_are_stale(runs):
    writer = RunWriter(runs / "other" / "run", {"recipe": "other"})
    writer.log({"step": 100, "loss": 1.0})
    save_random_unet_checkpoint(writer, 100, seed=7, data=None)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="ot-run").set_value(RUN).run()
    at.multiselect(key=f"ot-steps-{RUN}").set_value([100]).run()
    _small(at, "ot")
    at.button(key="ot-go").click().run()
    mine = _stored_images(at, runs, "my-run", [100])[0]
    at.selectbox(key="ot-run").set_value("other · runs folder").run()
    assert not at.exception and not at.get("image")  # nothing of my-run shown under the other run's name
    at.button(key="ot-go").click().run()
    assert len(at.get("image")) == 1 and not torch.equal(_stored_images(at, runs, "other", [100])[0], mine)
    at.number_input(key="ot-seed").set_value(5).run()
    assert any("from earlier settings" in i.value for i in at.info)


def test_each_bad_folder_gets_its_own_sentence_and_a_good_one_beside_them_still_samples(app_env, tmp_path, monkeypatch):
    """The hostile hunt's folders, one per line: a config nested 200,000 deep, a negative width and a UNet whose
    one image costs 2,216 GFLOP. Each line says what is wrong with it; the good folder on the last line and the
    zoo's models are sampled all the same (one bad line used to replace the whole page with an error box)."""
    runs = tmp_path / "runs"
    deep, negative, costly, good = (runs / name for name in ("deep", "negative", "costly", "good"))
    for folder in (deep, negative, costly):
        folder.mkdir(parents=True)
    (deep / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    (negative / "config.json").write_text(json.dumps({**_tiny_config(), "block_out_channels": [-16, 16, 16]}))
    (costly / "config.json").write_text(json.dumps(HOSTILE_UNET))
    for folder in (deep, negative, costly):
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"never read")
    tiny_unet(seed=1, channels=1, size=28).save_pretrained(good)
    monkeypatch.setattr(sources, "MAX_CHECKPOINTS", 6)  # the two zoo models and the four lines
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_area(key="ck-local").set_value("\n".join(str(f) for f in (deep, negative, costly, good))).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 3, (errors, [w.value for w in at.warning])  # one sentence per bad line
    assert "deep" in errors[0] and "negative" in errors[1] and "costly" in errors[2]
    assert "GFLOP" in errors[2]
    _small(at, "ck")
    at.button(key="ck-go").click().run()
    assert not at.exception and len(at.get("image")) == 3  # the two zoo models and the good folder


def _tiny_config() -> dict:
    """The config.json of a tiny MNIST-shaped UNet, as diffusers saves it."""
    return dict(tiny_unet(seed=0, channels=1, size=28).config) | {"_class_name": "UNet2DModel"}


def test_a_sample_keeps_the_images_of_the_checkpoints_it_samples_and_drops_those_no_longer_picked(runs):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    _small(at, "ck")
    at.button(key="ck-go").click().run()
    assert "memo:ck-result-tiny-uncond" in at.session_state and "memo:ck-result-tiny-cond" in at.session_state
    at.multiselect(key="ck-models").set_value(["tiny-uncond"]).run()
    at.selectbox(key="ck-run").set_value(RUN).run()
    at.multiselect(key=f"ck-steps-{RUN}").set_value([300]).run()
    assert "memo:ck-result-tiny-cond" in at.session_state  # kept until the next Sample
    at.button(key="ck-go").click().run()
    assert not at.exception and len(at.get("image")) == 2
    assert "memo:ck-result-tiny-uncond" in at.session_state and "memo:ck-result-tiny-cond" not in at.session_state


def test_sampling_the_toy_labs_steps_again_keeps_only_the_steps_picked(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120)
    run = ToyRun(TOY_SETS["moons"].cloud(500, seed=0), ToySettings(width=32), name="toy-1")
    run.train(500)
    at.session_state["toy_run"] = run
    at.run()
    label = "toy-1 · this session"
    at.selectbox(key="ot-run").set_value(label).run()
    at.multiselect(key=f"ot-steps-{label}").set_value([250, 500]).run()
    at.number_input(key="ot-toy-n").set_value(100).run()
    at.button(key="ot-toy-go").click().run()
    assert "memo:ot-toy-toy-1-250" in at.session_state and "memo:ot-toy-toy-1-500" in at.session_state
    at.multiselect(key=f"ot-steps-{label}").set_value([500]).run()
    at.button(key="ot-toy-go").click().run()
    assert not at.exception and list(at.dataframe[0].value["step"]) == [500]
    assert "memo:ot-toy-toy-1-250" not in at.session_state and "memo:ot-toy-toy-1-500" in at.session_state


def test_a_folder_with_its_own_scheduler_config_is_sampled_as_its_pipeline_beside_a_zoo_model(app_env, tmp_path):
    """Two pipeline folders whose scheduler configs diffusers' DDIMScheduler wrote (leading: all followed; linspace:
    a field the Atlas does not follow) beside a zoo model: each says how it is sampled, the folders' captions say
    what came from their configs, and a folder's images are those of its own settings (core/labs/compare.py)."""
    leading = write_ddim_folder(tmp_path / "runs" / "ddim-leading")
    write_ddim_folder(tmp_path / "runs" / "ddim-linspace", "linspace")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.multiselect(key="ck-models").set_value(["tiny-uncond"]).run()
    at.text_area(key="ck-local").set_value(f"{leading}\n{tmp_path / 'runs' / 'ddim-linspace'}").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="ck-sampler").value == "own"
    captions = [c.value for c in at.caption]
    own = "Sampled with DDIM (its own), {} spacing, x0 clipped to ±1."
    assert own.format("leading") in captions and own.format("linspace") in captions
    assert "Sampled with DPM-Solver++(2M), trailing spacing, x0 clipped to ±1." in captions  # the zoo model
    folder = "From the folder's scheduler_config.json (DDIMScheduler): DDIM, {} spacing, {}clip x0 to ±1, eta 0.0."
    assert folder.format("leading", "steps_offset 1, ") in captions and folder.format("linspace", "") in captions
    (warning,) = at.warning
    assert warning.value.startswith("Not followed: timestep_spacing linspace: diffusers' DDIM steps")
    _small(at, "ck")
    at.button(key="ck-go").click().run()
    assert not at.exception and not at.error and len(at.get("image")) == 3
    model = local_model(str(leading))
    steps, seed = (at.number_input(key=f"ck-{k}").value for k in ("steps", "seed"))
    batch = at.slider(key="ck-batch").value  # 3 (_small)
    shown = at.session_state[f"memo:ck-result-{model.name}"].value
    expected = run_sampler(model, compare.settings_for(model, None, steps, seed, batch, None))
    assert shown.settings == folder_settings(model, shown.settings) and shown.settings.steps_offset == 1
    assert torch.equal(shown.images, expected.images)
    at.selectbox(key="ck-sampler").set_value("euler").run()  # a sampler named replaces the folder's sampler alone
    assert "Sampled with Euler, leading spacing, x0 clipped to ±1." in [c.value for c in at.caption]


def _upload(at: AppTest, name: str, data: bytes, kind: str = "image/png") -> AppTest:
    at.file_uploader(key="ck-from-file").set_value((name, data, kind)).run()
    assert not at.exception
    return at


def _sampled(at: AppTest, media) -> dict[str, bytes]:  # noqa: F811
    at.button(key="ck-go").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return _downloads(at, media)


def test_a_grid_loaded_into_a_fresh_tab_chooses_its_checkpoints_again_and_samples_the_same_images(
    app_env,
    monkeypatch,
    media,  # noqa: F811
):
    """A zoo model and a pipeline folder sampled as its own scheduler config says (the sampler left to each),
    a class and a seed: the grid PNG, loaded into a fresh page, gives the tab those settings back, and Sample
    then draws the same grid, bit for bit."""
    monkeypatch.setenv("ATLAS_MANIFEST", str(write_ddim_zoo(app_env)))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.multiselect(key="ck-models").set_value(["tiny-cond", "tiny-ddim-leading"])
    at.number_input(key="ck-steps").set_value(3)
    at.number_input(key="ck-seed").set_value(5)
    at.selectbox(key="ck-class").set_value(4)
    at.slider(key="ck-batch").set_value(2).run()
    first = _sampled(at, media)
    records = provenance.read(first["ck-png"], "checkpoints.png")
    assert [r["model"]["name"] for r in records] == ["tiny-cond", "tiny-ddim-leading"]
    assert [r["settings"]["sampler"] for r in records] == ["dpmpp_2m", "ddim"]  # each its own

    again = _upload(AppTest.from_file(PAGE, default_timeout=120).run(), "checkpoints.png", first["ck-png"])
    assert again.multiselect(key="ck-models").value == ["tiny-cond", "tiny-ddim-leading"]
    assert again.selectbox(key="ck-sampler").value == "own"  # the folder's own sampler, DPM-Solver++(2M) else
    assert [again.number_input(key=f"ck-{k}").value for k in ("steps", "seed")] == [3, 5]
    assert again.slider(key="ck-batch").value == 2 and again.selectbox(key="ck-class").value == 4
    assert any("Restored from the file" in s.value for s in again.success) and not again.warning
    second = _sampled(again, media)
    assert np.array_equal(_pixels(second["ck-png"]), _pixels(first["ck-png"]))  # bit for bit
    assert provenance.read(second["ck-png"]) == records


def test_a_table_restores_a_named_sampler_clears_own_checkpoints_and_says_what_it_cannot_restore(
    app_env,
    media,  # noqa: F811
):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="ck-sampler").set_value("euler_ancestral")
    at.number_input(key="ck-seed").set_value(8)
    _small(at, "ck")
    at.run()
    first = _sampled(at, media)
    images = {n: at.session_state[f"memo:ck-result-{n}"].value.images for n in ("tiny-uncond", "tiny-cond")}
    at.selectbox(key="ck-sampler").set_value("heun")
    at.number_input(key="ck-seed").set_value(1)
    at.multiselect(key="ck-models").set_value(["tiny-cond"])
    at.text_area(key="ck-local").set_value("runs/nothing-here").run()
    _upload(at, "checkpoints.csv", first["ck-csv"], "text/csv")  # the table's first line carries the records
    assert at.selectbox(key="ck-sampler").value == "euler_ancestral" and at.number_input(key="ck-seed").value == 8
    assert (
        at.multiselect(key="ck-models").value == ["tiny-uncond", "tiny-cond"]
        and at.text_area(key="ck-local").value == ""
    )
    assert any("**Your own** were cleared" in i.value for i in at.info)
    _sampled(at, media)
    for name, before in images.items():  # the same images again (a stochastic sampler: the same noise too)
        assert torch.equal(at.session_state[f"memo:ck-result-{name}"].value.images, before)

    records = provenance.read(first["ck-csv"])
    records[1]["model"] = {"name": "local:/elsewhere/unet.safetensors", "title": "someone's run", "source": "x"}
    records[0]["settings"]["spacing"] = "karras"  # a setting the tab does not set
    at = _upload(at, "edited.json", json.dumps(records).encode(), "application/json")
    warnings = [w.value for w in at.warning]
    assert any("someone's run (x) is not a zoo model here" in w for w in warnings), warnings
    assert any("with settings this tab does not set (spacing)" in w for w in warnings), warnings
    assert at.multiselect(key="ck-models").value == ["tiny-uncond"]

    study = {**records[0], "study": {"page": "Guidance: what each method trades"}}
    at = _upload(at, "guidance.json", json.dumps(study).encode(), "application/json")
    assert [e.value for e in at.error] == [
        "guidance.json holds a study of another page (Guidance: what each method trades), not checkpoints sampled: "
        "load it there."
    ]
    _upload(at, "notes.csv", b"a,b\n1,2\n", "text/csv")
    assert any("not a PNG, GIF, CSV or JSON file that the Atlas wrote" in e.value for e in at.error)
