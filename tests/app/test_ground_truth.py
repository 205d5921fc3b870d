"""The Ground truth page through Streamlit's AppTest: shaping and fitting a mixture, measuring every sampler,
the probe, a model's likelihood and memorisation, the latent model's likelihood, and bad input."""

from __future__ import annotations

import json

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from core.data.toy import TOY_SETS
from core.diffusion.samplers import SAMPLERS
from core.labs.ground_truth import accuracy, memorisation
from tests.app.helpers import figures, open_page, table
from tests.helpers import plotly_array


@pytest.fixture
def app(monkeypatch) -> AppTest:
    return open_page("ground_truth", monkeypatch)


def test_first_visit_shows_the_mixture_and_waits_for_a_measure(app):
    title = json.dumps(figures(app)[0]["layout"]["title"])
    assert "Four unequal blobs" in title
    assert any("Press Measure" in i.value for i in app.info)
    assert any("Train a model on this mixture" in i.value for i in app.info)
    # A tooltip grows left from its icon: the narrow columns of section 1 say what they do in a caption instead.
    assert not app.slider(key="gt-spread").help and not app.slider(key="gt-distance").help
    assert any("distance × moves the means towards" in c.value for c in app.caption)


def test_measure_ranks_every_sampler_against_exact_answers_and_a_new_mixture_drops_the_old_numbers(app):
    app.number_input(key="gt-acc-n").set_value(200)
    app.button(key="gt-acc-go").click().run()
    assert not app.exception and not app.warning
    orders = table(app, "Order (fitted)")
    measured = [SAMPLERS[name] for name in accuracy.INTEGRATORS]  # every sampler that solves the ODE or SDE
    assert set(orders["Sampler"]) == {s.title for s in measured}  # the consistency sampler is not among them
    heun = orders[orders["Sampler"] == "Heun"].iloc[0]
    assert 1.5 < heun["Order (fitted)"] < 2.5 and heun["≤ 200 NFE"] < heun["≤ 8 NFE"] / 100
    stochastic = orders[orders["Measured against"].str.contains("Brownian")]
    assert len(stochastic) == sum(s.injects_noise() for s in measured)
    legend = [t["name"] for f in figures(app) for t in f["data"] if "order" in t.get("name", "")]
    assert len(legend) == len(measured)
    moments = table(app, "Mass error")
    assert moments.iloc[0]["Sampler"].startswith("Exact draws") and len(moments) == len(measured) + 1
    app.selectbox(key="gt-preset").set_value("Two close modes").run()
    assert any("Press Measure" in i.value for i in app.info)  # numbers of another mixture are not shown


REAL = {(accuracy, "accuracy"): accuracy.accuracy, (memorisation, "run_study"): memorisation.run_study}


def _stopped_at(monkeypatch, module, name: str, rows: int, late: list | None = None) -> None:
    """`module.name` (a job reporting its table or study through `on_row`) as a Stop ends it: the run ends (as
    Streamlit ends it, at a redraw) when its `rows`-th row is done, before the page hears of it; `late` gets that
    report, for a test to deliver as the stopped run's thread would, after the next run has shown the job."""
    real = REAL[module, name]

    def job(*args, on_row, **kwargs):
        def stopping(found):
            if len(found.rows) == rows:
                if late is not None:
                    late.append((on_row, found))
                raise StopException()
            on_row(found)

        return real(*args, on_row=stopping, **kwargs)

    monkeypatch.setattr(module, name, job)


def test_a_stopped_measure_says_how_far_it_got(app, monkeypatch):
    app.number_input(key="gt-acc-n").set_value(100)
    _stopped_at(monkeypatch, accuracy, "accuracy", 1)
    app.button(key="gt-acc-go").click().run()
    app.run()  # the Stop's own run
    assert [w.value for w in app.warning] == ["Stopped before any sampler was measured; Measure again for all of them."]
    assert not any("Press Measure" in i.value for i in app.info)
    _stopped_at(monkeypatch, accuracy, "accuracy", 3)
    app.button(key="gt-acc-go").click().run()
    app.run()
    total = len(accuracy.INTEGRATORS)
    assert [w.value for w in app.warning] == [f"Stopped after 2 of {total} samplers; Measure again for all of them."]
    assert len(table(app, "Order (fitted)")) == 2


def test_a_table_that_is_not_a_mixture_gets_a_sentence(app):
    app.slider(key="gt-spread").set_value(0.25).run()
    app.slider(key="gt-distance").set_value(0.0).run()  # every mean on the centre: still a mixture
    assert not app.exception and not app.error
    edit = {"edited_rows": {"0": {"std": -1.0}}, "added_rows": [], "deleted_rows": []}
    app.session_state["gt-table-Four unequal blobs"] = edit
    app.run()
    assert not app.exception
    assert any("stds between" in e.value for e in app.error)


def test_a_mixture_fitted_to_any_built_in_2d_set(app):
    app.segmented_control(key="gt-how").set_value("Fit to a toy set").run()
    app.slider(key="gt-fit-k").set_value(4).run()
    assert len(app.selectbox(key="gt-fit-set").help) < 50  # one short line beside the page's left edge
    for name in [s.name for s in TOY_SETS.values() if s.dim == 2]:
        app.selectbox(key="gt-fit-set").set_value(name).run()
        assert not app.exception and not app.error, name
    app.selectbox(key="gt-fit-set").set_value("moons").run()
    assert "4 Gaussians fitted to Two moons" in json.dumps(figures(app)[0]["layout"]["title"])


def test_the_probe_draws_each_sampler_from_one_start_and_a_new_start_on_request(app):
    app.select_slider(key="gt-probe-sigma").set_value(5.0)
    app.slider(key="gt-probe-steps").set_value(4)
    app.multiselect(key="gt-probe-samplers").set_value(["heun", "ddpm"]).run()
    probe = table(app, "Distance to the exact end")
    assert list(probe["Sampler"]) == ["Heun", "DDPM (ancestral)"] and list(probe["NFE"]) == [7, 4]
    first = app.session_state["memo:gt-probe-start"].value
    app.button(key="gt-probe-draw").click().run()
    drawn = app.session_state["memo:gt-probe-start"].value
    assert not app.exception and drawn.point != first.point and drawn.draw == first.draw + 1
    assert f"Start: ({drawn.point[0]:.3f}, {drawn.point[1]:.3f})" in " ".join(c.value for c in app.caption)
    frames = [f for f in figures(app) if f.get("frames")]
    assert frames and len(frames[0]["frames"]) == 5  # one per step, and the end


def test_a_model_of_the_mixture_its_likelihood_and_its_memorisation(app):
    app.select_slider(key="gt-model-n").set_value(32)
    app.select_slider(key="gt-model-steps").set_value(1000).run()
    app.button(key="gt-model-go").click().run()
    assert not app.exception and not app.error
    app.button(key="gt-like-go").click().run()
    assert not app.exception and not app.error
    nll = table(app, "NLL (nats)")
    truth, exact_ode, model = nll["NLL (nats)"]
    assert abs(truth - exact_ode) < 1e-3 and model > truth - 3 * nll["± SE"].iloc[2]
    gap = float(nll["NLL gap to the truth (paired)"].iloc[2].split(" ± ")[0])
    assert gap > 0  # 32 points and 1,000 steps: the model gives held-out points less than the truth
    heat = next(t for f in figures(app) for t in f["data"] if t.get("name") == "ODE, exact denoiser")
    notes = [n for row in heat["text"] for n in row]
    assert len(notes) == plotly_array(heat["z"]).size and all(n.endswith("nats (est. error)") for n in notes)
    assert max(float(n.split()[1]) for n in notes) <= 1e-3  # the default mixture: every value within 1e-3 nats
    assert any("Every value's estimated error is within 0.001 nats" in c.value for c in app.caption)
    app.button(key="gt-memo-go").click().run()
    assert not app.exception
    names = [t["name"] for f in figures(app) for t in f["data"] if t["type"] == "histogram"]
    assert any(n.startswith("Optimal denoiser of the training set: 100% copies") for n in names)
    app.button(key="gt-model-go").click().run()  # a new model: the old model's numbers go
    assert not any("NLL (nats)" in d.value.columns for d in app.dataframe)


def _study(app: AppTest, checkpoints: int) -> AppTest:
    app.multiselect(key="gt-study-sizes").set_value([16])
    app.select_slider(key="gt-study-steps").set_value(500)
    app.slider(key="gt-study-checks").set_value(checkpoints).run()
    app.button(key="gt-study-go").click().run()
    assert not app.exception
    return app


def _study_points(app: AppTest) -> int:
    study = [f for f in figures(app) if "copying" in json.dumps(f["layout"].get("yaxis", {}))]
    return len(study[0]["data"][0]["x"]) if study else 0


def test_a_stopped_study_keeps_the_count_it_said_when_its_run_reports_late(app, monkeypatch):
    late = []
    _stopped_at(monkeypatch, memorisation, "run_study", 3, late)
    _study(app, 4)  # the run that the Stop ends as its third measurement is done
    app.run()  # the Stop's own run, while the stopped run's thread is still on its way to report the third
    said = [w.value for w in app.warning]
    assert said == ["Stopped after 2 of 4 measurements; run the study again for all of them."]
    assert _study_points(app) == 2
    on_row, found = late[0]
    on_row(found)  # the stopped run's thread reports its third measurement now
    app.slider(key="gt-probe-steps").set_value(10).run()  # a click in another tab, as the tester's
    assert [w.value for w in app.warning] == said and _study_points(app) == 2
    assert len(found.rows) == 3  # what the stopped run measured, never shown


def test_a_study_stopped_before_its_first_measurement_says_so(app, monkeypatch):
    _stopped_at(monkeypatch, memorisation, "run_study", 1)
    _study(app, 2)
    app.run()
    assert [w.value for w in app.warning] == [
        "Stopped before the first measurement was made; run the study again for all of them."
    ]
    assert _study_points(app) == 0


def test_a_short_memorisation_study(app):
    app.multiselect(key="gt-study-sizes").set_value([16])
    app.select_slider(key="gt-study-steps").set_value(500)
    app.slider(key="gt-study-checks").set_value(2).run()
    app.button(key="gt-study-go").click().run()
    assert not app.exception and not app.error
    study = [f for f in figures(app) if "copying" in json.dumps(f["layout"].get("yaxis", {}))]
    assert study and len(study[0]["data"][0]["x"]) == 2


def test_the_latent_model_likelihood_beside_a_density_estimate(app):
    app.button(key="gt-latent-go").click().run()
    assert not app.exception and not app.error
    nll = table(app, "bits / dim")
    assert len(nll) == 2 and all(2 < v < 6 for v in nll["NLL (nats)"])


def test_a_short_job_ended_by_a_click_says_so_once_on_the_next_run(app, monkeypatch):
    """The latent likelihood has no Stop (about 5 s); a click while it runs ends the run inside it. The next run
    says so, instead of showing the button as if nothing had been asked; the run after that no longer does."""
    from ui.ground_truth import state

    def interrupted(*args, **kwargs):
        raise StopException()  # where a click (a rerun or Streamlit's Stop) ends the run

    monkeypatch.setattr(state, "compute_latent_likelihood", interrupted)
    app.button(key="gt-latent-go").click().run()
    app.run()  # the click's own run
    notes = [i.value for i in app.info if "before they were done" in i.value]
    assert notes == ["A click ended the latent log densities before they were done; press **Compute** again."]
    app.run()
    assert not [i for i in app.info if "before they were done" in i.value]
    assert not app.exception


def _grid_table(app):
    return table(app, "Grid")


def test_step_grids_are_measured_against_the_exact_end_point_and_drawn(app):
    from core.diffusion.grids import karras_sigmas
    from core.diffusion.samplers import sample
    from core.labs.ground_truth import grids
    from core.labs.ground_truth.noise import start_points

    app.multiselect(key="gt-grid-samplers").set_value(["euler", "dpmpp_2m"])
    app.number_input(key="gt-grid-n").set_value(100)
    app.button(key="gt-grid-go").click().run()
    assert not app.exception and not app.error and not app.warning
    rows = _grid_table(app)
    assert len(rows) == 2 * len(grids.GRIDS) and set(rows["Grid"]) == set(grids.GRIDS.values())
    # the Karras row of Euler at NFE 5, computed here on its own from the same start points and the exact ODE
    from core.labs.ground_truth.accuracy import ode_endpoint
    from core.labs.ground_truth.mixtures import PRESETS, shaped_mixture

    mix = shaped_mixture(PRESETS["Four unequal blobs"])
    x_T = start_points(100, 0)
    out = sample("euler", mix.denoise, x_T.clone(), karras_sigmas(5, 0.002, 80.0))
    expected = float((out - ode_endpoint(mix, x_T)).pow(2).sum(1).mean().sqrt())
    euler = rows[(rows["Sampler"] == "Euler") & (rows["Grid"] == grids.GRIDS["karras"])].iloc[0]
    assert euler["NFE ≤ 5"] == pytest.approx(expected, rel=1e-2)
    searched = rows[rows["Grid"] == grids.GRIDS["optimised"]]
    assert searched["NFE ≤ 10"].notna().all() and searched["Order (fitted)"].isna().all()  # searched up to NFE 10
    panels = figures(app)
    assert any(t.get("name") == grids.GRIDS["ays"] for f in panels for t in f["data"])
    (where,) = [f for f in panels if "the last step" in json.dumps(f["layout"].get("xaxis", {}))]
    points = where["data"]  # where each grid puts its 5 steps, for Euler
    assert len(points) == len(grids.GRIDS)
    assert all(len(plotly_array(t["x"])) == 5 for t in points)


def test_a_typed_grid_is_measured_beside_them_and_one_that_starts_elsewhere_gets_a_sentence(app):
    app.multiselect(key="gt-grid-samplers").set_value(["euler"])
    app.multiselect(key="gt-grid-grids").set_value(["karras"])
    app.text_input(key="gt-grid-typed").input("80, 5, 0.5, 0.002")
    app.number_input(key="gt-grid-n").set_value(100)
    app.button(key="gt-grid-go").click().run()
    assert not app.exception and not app.error
    rows = _grid_table(app)
    typed = rows[rows["Grid"] == "typed"].iloc[0]
    assert typed["Its NFE"] == 4 and typed["Error"] > 0
    app.text_input(key="gt-grid-typed").input("60, 5, 0.5").run()
    app.button(key="gt-grid-go").click().run()
    assert not app.exception and any("starts at σ = 80" in e.value for e in app.error)
    app.text_input(key="gt-grid-typed").input("80, 90").run()
    assert not app.exception and any("decreasing" in e.value for e in app.error)


def test_a_stopped_grid_measure_keeps_the_curves_done(app, monkeypatch):
    from core.labs.ground_truth import grids

    real = grids.grid_study

    def stopping(*args, on_curve, **kwargs):
        def report(study):
            if len(study.curves) == 3:
                raise StopException()
            on_curve(study)

        return real(*args, on_curve=report, **kwargs)

    monkeypatch.setattr(grids, "grid_study", stopping)
    app.multiselect(key="gt-grid-samplers").set_value(["euler", "heun"])
    app.number_input(key="gt-grid-n").set_value(100)
    app.button(key="gt-grid-go").click().run()
    app.run()
    assert [w.value for w in app.warning] == [
        f"Stopped after 2 of {2 * len(grids.GRIDS)} curves; Measure again for all of them."
    ]
    assert len(_grid_table(app)) == 2
