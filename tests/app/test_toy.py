"""The toy lab page through Streamlit's AppTest: generate -> train -> sample -> drift in 2-D and 3-D, and bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.metrics.points import sliced_wasserstein
from tests.conftest import ROOT

PAGE = str(ROOT / "app_pages" / "toy.py")


def _figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _setup(at: AppTest, source: str, data_set: str, points: int, steps: int) -> AppTest:
    at.segmented_control(key="toy-source").set_value(source).run()
    at.selectbox(key=f"toy-set-{source[0]}").set_value(data_set).run()
    at.number_input(key="toy-builtin-n").set_value(points)
    at.number_input(key="toy-steps").set_value(steps)
    at.select_slider(key="toy-width").set_value(32)
    return at.run()


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and not at.error
    return at


def test_first_visit_shows_the_default_data_and_asks_for_a_model(app):
    assert app.selectbox(key="toy-set-2").value == "swiss_roll"
    assert "10,000 points" in json.dumps(_figures(app)[0]["layout"]["title"])
    assert any("Train a model" in i.value for i in app.info)
    assert "toy_run" not in app.session_state


def test_2d_generate_train_sample_and_drift_with_the_exact_mixture_field(app):
    at = _setup(app, "2d", "eight_gaussians", 2000, 40)
    at.button(key="toy-train").click().run()
    assert not at.exception and not at.error
    run = at.session_state["toy_run"]
    assert run.step == 40 and run.dim == 2
    # Continue is ready in the same run as the first Train (it used to need another click on the page)
    assert not at.button(key="toy-continue").disabled
    (logged,) = at.session_state["session_runs"]  # what the Training logs page lists for this session
    assert logged.name == run.name == "toy-1" and logged.config["kind"] == "toy" and logged.metrics[-1]["step"] == 40
    rows = at.dataframe[0].value  # training samples once by itself
    assert list(rows["Sampler"]) == ["Euler"] and rows["NFE"][0] == 50
    assert {m.label for m in at.metric} == {"Sliced W₂", "MMD", "Time"}
    figures = _figures(at)
    trajectory = next(f for f in figures if f.get("frames") and f["layout"].get("sliders") and len(f["frames"]) > 30)
    assert len(trajectory["frames"]) == 51  # 50 steps + the final samples
    field = figures[-1]
    titles = [a["text"] for a in field["layout"]["annotations"]]
    assert titles == ["Learned", "Exact (mixture)", "Learned − exact"]
    assert len(field["frames"]) == 10
    # Another sampler joins the table; the model is continued with its own optimizer.
    at.selectbox(key="toy-sampler").set_value("heun")
    at.slider(key="toy-sample-steps").set_value(8)
    at.button(key="toy-sample").click().run()
    rows = at.dataframe[0].value
    assert list(rows["Sampler"]) == ["Euler", "Heun"] and list(rows["NFE"]) == [50, 15]
    tries = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "sliced W" in c.proto.spec)
    assert {t["name"] for t in tries["data"]} == {"Euler · toy-1", "Heun · toy-1"}  # SW2 / MMD against steps
    optimizer = run.trainer.optimizer
    at.number_input(key="toy-steps").set_value(20)
    at.button(key="toy-continue").click().run()
    assert at.session_state["toy_run"] is run and run.step == 60 and run.trainer.optimizer is optimizer
    assert not at.exception


def test_3d_torus_trains_samples_and_draws_cones(app):
    at = _setup(app, "3d", "torus", 1000, 20)
    at.button(key="toy-train").click().run()
    assert not at.exception and not at.error
    assert at.session_state["toy_run"].dim == 3
    figures = _figures(at)
    assert figures[0]["data"][0]["type"] == "scatter3d"
    assert any(f.get("frames") and f["frames"][0]["data"][0]["type"] == "cone" for f in figures)
    at.radio(key="toy-field-kind").set_value("score").run()
    assert not at.exception


def test_changing_the_data_after_training_warns_and_keeps_the_model_on_its_data(app):
    at = _setup(app, "2d", "moons", 500, 10)
    at.button(key="toy-train").click().run()
    at.segmented_control(key="toy-source").set_value("3d").run()
    assert not at.exception
    assert any("The data changed" in w.value for w in at.warning)
    assert at.session_state["toy_run"].dim == 2


ROWS = "\n".join(f"{i},{i % 7}" for i in range(40))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"x,y\n" + ROWS.encode() + b"\n3,hello", "holds 'hello', which is not a number"),
        (b"x,y\n" + ROWS.encode() + b"\n3,NaN", "is empty or NaN"),
        (b"x\n" + b"\n".join(b"%d" % i for i in range(40)), "1 column(s)"),
        (b"\n".join(b"%d,%d" % (i, i) for i in range(100_001)), "more than 100,000 rows"),
        (b"x,y\n" + ROWS.encode() + b"\n1,4e38", "Line 42: column 'y' holds 4e38, beyond float32's range"),
    ],
)
def test_bad_csv_uploads_get_a_clear_message_and_the_app_keeps_running(app, content, message):
    app.segmented_control(key="toy-source").set_value("csv").run()
    assert any("Upload a CSV" in i.value for i in app.info)
    app.file_uploader(key="toy-csv").set_value(("points.csv", content, "text/csv")).run()
    assert not app.exception
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    app.segmented_control(key="toy-source").set_value("2d").run()
    assert not app.exception and not app.error


def test_a_good_csv_upload_trains(app):
    app.segmented_control(key="toy-source").set_value("csv").run()
    app.file_uploader(key="toy-csv").set_value(("ring.csv", b"x,y\n" + ROWS.encode(), "text/csv")).run()
    assert not app.error and "40 points" in json.dumps(_figures(app)[0]["layout"]["title"])
    app.number_input(key="toy-steps").set_value(10)
    app.button(key="toy-train").click().run()
    assert not app.exception and app.session_state["toy_run"].data_title.startswith("ring.csv")


def test_the_drawing_source_asks_for_a_drawing_when_the_canvas_is_empty(app):
    app.segmented_control(key="toy-source").set_value("draw").run()
    assert not app.exception and not app.error
    assert any("Draw a shape" in i.value for i in app.info)


def test_the_page_is_listed_and_opens_from_the_entry_point():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("app_pages/toy.py").run()
    assert not at.exception
    assert at.title[0].value == "Toy diffusion lab"


def test_a_job_over_the_servers_budget_is_refused_before_it_starts_and_the_model_stays(app, monkeypatch):
    at = _setup(app, "2d", "moons", 500, 30)
    at.button(key="toy-train").click().run()
    run = at.session_state["toy_run"]
    assert any("of training on this server" in c.value for c in at.caption)  # the estimate, before a click
    at.number_input(key="toy-steps").set_value(20_000)
    at.select_slider(key="toy-batch").set_value(4096)
    at.select_slider(key="toy-width").set_value(512)
    at.slider(key="toy-depth").set_value(8)
    at.run()
    warning = next(w.value for w in at.warning if "over its limit" in w.value)
    assert "fewer steps, a smaller batch or a smaller network" in warning
    assert at.button(key="toy-train").disabled and not at.exception
    # Continue trains the model's own (small) network: refused only when that is over the limit
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    at.number_input(key="toy-steps").set_value(5000)
    at.button(key="toy-continue").click().run()
    assert any("over its limit" in e.value for e in at.error) and not at.exception
    assert at.session_state["toy_run"] is run and run.step == 30  # nothing replaced, nothing trained


def test_a_flow_matching_model_trains_and_samples_in_the_lab(app):
    at = _setup(app, "2d", "moons", 2000, 300)
    at.radio(key="toy-target").set_value("flow_prediction").run()
    at.button(key="toy-train").click().run()
    assert not at.exception and not at.error
    assert any("predicts flow matching" in c.value for c in at.caption)
    assert at.session_state["toy_run"].schedule.path == "vp"  # the lab's schedule places the steps
    assert float(at.metric[0].value) < 0.5  # sliced W2 of the automatic sample: it learnt the moons


def test_objectives_compared_then_reflow_straightens_the_flow_and_joins_the_tries(app):
    at = _setup(app, "2d", "moons", 2000, 400)
    at.select_slider(key="toy-obj-n").set_value(500)
    at.button(key="toy-obj-go").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Chord / length" in d.value.columns)
    assert list(table["Objective"]) == ["v (velocity)", "flow matching"]
    assert (table["SW2 @ 32"] < table["SW2 @ 1"]).all()
    assert len(_figures(at)[-1]["data"]) == 4  # two panels of paths, each with its start points
    at.select_slider(key="toy-reflow-pairs").set_value(2000)
    at.button(key="toy-reflow-go").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Chord / length" in d.value.columns).set_index("Objective")
    reflow, flow = table.loc["flow matching (reflow)"], table.loc["flow matching"]
    assert reflow["Chord / length"] > flow["Chord / length"] and reflow["SW2 @ 1"] < flow["SW2 @ 1"] / 3
    tries = at.session_state["toy_table"]
    assert [(r["Steps"], r["Model"].split(" @ ")[0][:8]) for r in tries] == [
        (1, "toy-flow"),
        (2, "toy-flow"),
        (1, "toy-refl"),
        (2, "toy-refl"),
    ]


def test_after_a_stop_the_progress_line_and_the_caption_name_the_steps_the_model_kept(app, monkeypatch):
    """A Stop lands between two redraws of the (throttled) progress line: here training went on to step 870 while
    the last line drawn said 780. The run the Stop starts names the model's own 870 steps, in the line and in the
    caption, and nothing on the page says 780 any more."""
    import ui.toy.state as toy_state

    real = toy_state.training_progress

    def stopped_at_870(*args, **kwargs):
        draw = real(*args, **{**kwargs, "bar_every": 0.0})  # every callback draws: the last line is exactly 780

        def update(trainer) -> None:
            if trainer.step <= 780:
                draw(trainer)
            if trainer.step >= 870:
                raise StopException  # how Streamlit ends the script at a Stop

        return update

    monkeypatch.setattr(toy_state, "training_progress", stopped_at_870)
    at = _setup(app, "2d", "moons", 500, 4000)
    at.button(key="toy-train").click().run()
    assert at.session_state["toy_run"].step == 870
    assert at.get("progress")[-1].proto.text.startswith("Step 780 of 4,000")  # what the page was left showing
    at.button(key="toy-stop").click().run()  # the Stop's own run
    assert not at.exception and at.session_state["toy_run"].step == 870
    (line,) = [p.proto.text for p in at.get("progress")]
    assert line == "Stopped at step 870 of 4,000: the model keeps these 870 steps (Continue training adds more)."
    assert any("870 steps (stopped before 4,000)" in c.value for c in at.caption)
    shown = [e.value for e in (*at.caption, *at.markdown, *at.info) if isinstance(e.value, str)]
    assert not any("780" in text for text in shown)
    assert at.session_state["toy_table"][-1]["Model"] == "toy-1 @ 870 steps"  # sampled by itself, as kept


def test_the_samples_distances_are_read_against_fresh_data_of_their_own_size(app):
    """The metrics' help, the tries table and its chart give the range of ten draws of two fresh data sets of
    exactly the sampled size (here 2,000), as a direct computation gives it; not one fresh pair called a floor."""
    at = _setup(app, "2d", "moons", 2000, 300)
    at.button(key="toy-train").click().run()  # samples 10,000 points by itself
    at.number_input(key="toy-sample-n").set_value(2000)
    at.slider(key="toy-sample-steps").set_value(8)
    at.button(key="toy-sample").click().run()
    assert not at.exception and not at.error
    run = at.session_state["toy_run"]
    g, values = torch.Generator().manual_seed(20_000), []
    for _ in range(10):
        a, b = run.fresh_data(2000, g), run.fresh_data(2000, g)
        values.append(sliced_wasserstein(a, b, projections=128, generator=torch.Generator().manual_seed(0)))
    low, high = min(values), max(values)
    rows = at.dataframe[0].value
    assert list(rows["Points"]) == [10_000, 2000] and "SWD floor" not in rows
    assert rows["SWD, two fresh sets"][1] == f"{low:.4f}–{high:.4f}" != rows["SWD, two fresh sets"][0]
    assert at.metric[0].proto.help == f"Two fresh data sets: {low:.3f}–{high:.3f}"
    tries = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "sliced W" in c.proto.spec)
    shapes = tries["layout"]["shapes"]
    assert (shapes[0]["y0"], shapes[0]["y1"]) == pytest.approx((low, high), abs=1e-12)
    assert shapes[0]["name"] == "two fresh data sets (2,000 each), range of 10 draws"
    g = torch.Generator().manual_seed(20_000)  # the same draws at another size read otherwise
    other = [sliced_wasserstein(run.fresh_data(1000, g), run.fresh_data(1000, g)) for _ in range(10)]
    assert (min(other), max(other)) != pytest.approx((low, high), rel=1e-6)


def test_a_new_solver_on_a_new_grid_with_its_analytic_first_step_samples_and_counts_one_call_fewer(app):
    at = _setup(app, "2d", "eight_gaussians", 2000, 20)
    at.button(key="toy-train").click().run()
    at.selectbox(key="toy-sampler").set_value("unipc").run()
    at.selectbox(key="toy-spacing").set_value("log-snr")
    at.slider(key="toy-sample-steps").set_value(6)
    at.selectbox(key="toy-opt-unipc-afs").set_value("on")
    at.button(key="toy-sample").click().run()
    assert not at.exception and not at.error
    rows = at.dataframe[0].value
    last = rows.iloc[-1]
    assert last["Sampler"] == "UniPC" and last["Spacing"] == "log-snr" and last["NFE"] == 5
