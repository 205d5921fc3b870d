"""The toy lab's fifth section: objectives compared on the lab's data (same network, budget and seed), and
rectified flow's reflow. Both are long jobs with a Stop, so they run in the page's own run, not a fragment."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.data.toy import PointCloud
from core.labs import objectives as ob
from core.labs.toy import ToySettings, run_sampler, training_seconds
from ui.common import session_runs
from ui.common.charts import LOG_AXIS, MARGIN, SERIES_COLORS, add_band, log_axis, polylines
from ui.common.live import ProgressBar, job_estimate
from ui.common.memo import Memo
from ui.common.widgets import run_job
from ui.toy import state

# By the key of the data the models learnt: {objective: (run, result)}, filled as each model is done (a Stop keeps
# those); and the reflowed model of the flow model there, (run, result), by the same key.
RESULTS = Memo[str, dict[str, tuple]]("toy-objectives")
REFLOWED = Memo[str, tuple]("toy-reflow")
SHOWN_PATHS = 150


def _progress(slot: Any, total: int, title: str):
    """A trainer callback drawing a progress bar (at most every 0.3 s; the last step always)."""
    bar = ProgressBar(slot)
    return lambda trainer: bar.show(trainer.step / total, f"{title}: step {trainer.step:,} of {total:,}")


def _train_and_compare(cloud: PointCloud, base: ToySettings, objectives: list[str], steps: int, n: int, slot) -> None:
    found = RESULTS.put(cloud.key, {})
    REFLOWED.clear()
    bars: dict[str, Any] = {}

    def callback(objective: str, trainer) -> None:
        title = f"{ob.OBJECTIVES[objective]} ({len(found) + 1} of {len(objectives)})"
        bars.setdefault(objective, _progress(slot, steps, title))(trainer)

    names = lambda o: session_runs.next_name(f"toy-{o.split('_')[0]}")  # noqa: E731
    for run, result in ob.compare(cloud, base, objectives, steps, n, base.seed, callback, names):
        session_runs.add(run.log)
        found[run.settings.prediction_type] = (run, result)
    slot.empty()


def _reflow(pairs_n: int, steps: int, n: int, slot) -> None:
    data, found = RESULTS.latest()
    flow_run, _ = found["flow_prediction"]
    slot.progress(0.0, text=f"Sampling {pairs_n:,} (noise, sample) pairs with the flow model…")
    pairs = ob.coupling(flow_run, pairs_n, flow_run.settings.seed)
    name = session_runs.next_name("toy-reflow")
    run = ob.reflow(flow_run, pairs, steps, name, _progress(slot, steps, f"Reflow on {pairs_n:,} pairs"))
    session_runs.add(run.log)
    REFLOWED.put(data, (run, ob.measure(run, n, flow_run.settings.seed)))
    seed = flow_run.settings.seed
    for model in (flow_run, run):  # one and two Euler steps of both, into the tries table above
        for k in (1, 2):
            result = run_sampler(model, "euler", k, n, seed=seed, path_points=100)
            state.add_row(state.measured(result, model, seed), model)
    slot.empty()


def objectives_section(cloud: PointCloud, base: ToySettings, steps: int) -> None:
    st.subheader("5 · Objectives compared, and reflow")
    st.markdown(
        "Models that differ only in what they learn: the same data, network, training steps and seed, sampled "
        "with Euler (= DDIM) from the same noise at NFE 1 to 32. Flow matching trains on the straight path "
        "x_t = (1 − t) x₀ + t ε (its own schedule); the others on the lab's schedule. **Reflow** then samples "
        "(noise, sample) pairs from the flow model and trains a new flow on them: its paths straighten, so one "
        "or two steps land near the data."
    )
    a, b, c = st.columns([3, 1, 1])
    chosen = a.multiselect(
        "Objectives",
        list(ob.OBJECTIVES),
        default=["v_prediction", "flow_prediction"],
        format_func=ob.OBJECTIVES.get,
        key="toy-obj-list",
        max_selections=4,
    )
    n = b.select_slider("Points measured", [500, 1000, 2000, 5000], 2000, key="toy-obj-n")
    c.caption(f"Training: {steps:,} steps each (section 2's), seed {base.seed}.")
    fits = bool(chosen) and job_estimate(
        lambda: sum(training_seconds(ob.settings_for(base, o), cloud.dim, steps) for o in chosen)
    )
    b1, b2, _ = st.columns([1.3, 1, 4])
    clicked = b1.button("Train and compare", type="primary", key="toy-obj-go", disabled=not fits)
    b2.button("Stop", key="toy-obj-stop", help="Keeps the models trained and measured so far.")
    slot = st.empty()
    if clicked:
        run_job("objectives compared", _train_and_compare, cloud, base, list(chosen), steps, int(n), slot)
    stored = RESULTS.latest()
    if stored is None or not stored[1]:
        st.info("Choose the objectives and press **Train and compare**." if chosen else "Choose an objective.")
        return
    if stored[0] != cloud.key:
        st.warning("These models learnt other data: train and compare again for this one.")
    found = stored[1]
    if "flow_prediction" in found:
        _reflow_controls(steps, int(n))
    results = [result for _, result in found.values()]
    reflowed = REFLOWED.get(stored[0])
    if reflowed is not None:
        results.append(reflowed[1])
    st.plotly_chart(ladder_figure(results), key="toy-obj-ladder")
    st.dataframe(pd.DataFrame(objective_rows(results)), hide_index=True, width="stretch", key="toy-obj-table")
    st.plotly_chart(paths_figure(results), key="toy-obj-paths")
    st.caption(
        "Paths in each model's own coordinates (x_t of its path, standardised units), from the noise (grey) to "
        "the samples. The flow path interpolates data and noise linearly, so its noisy clouds shrink mid-way "
        "and the paths of the marginal ODE bow towards the centre; what is straight are the conditional paths, "
        "and after reflow the marginal ones too."
    )


def _reflow_controls(steps: int, n: int) -> None:
    a, b = st.columns([1, 4])
    pairs = a.select_slider("Pairs", [1000, 2000, 5000, 10_000], 5000, key="toy-reflow-pairs")
    b.caption(
        f"The new flow trains {steps:,} steps on the pairs (same network and seed); its 1- and 2-step "
        "samples, and the flow model's, join the tries table in section 3."
    )
    b1, b2, _ = st.columns([1.3, 1, 4])
    clicked = b1.button("Reflow", type="primary", key="toy-reflow-go")
    b2.button("Stop", key="toy-reflow-stop", help="Keeps the reflow model trained so far (press Reflow again).")
    slot = st.empty()
    if clicked:
        run_job("reflow", _reflow, int(pairs), steps, n, slot)


def objective_rows(results: list[ob.ObjectiveResult]) -> list[dict[str, object]]:
    return [
        {
            "Model": r.name,
            "Objective": ob.OBJECTIVES[r.objective] + (" (reflow)" if "reflow" in r.name else ""),
            **{f"SW2 @ {k}": round(v, 3) for k, v in r.sw2.items()},
            "SW2, two fresh sets": r.reference.span(),
            "Chord / length": round(r.chord_ratio, 3),
            "Curvature S": round(r.curvature, 3),
            "Seconds": round(r.seconds, 2),
        }
        for r in results
    ]


def ladder_figure(results: list[ob.ObjectiveResult], height: int = 320) -> go.Figure:
    """SW2 to fresh data against Euler's NFE, one line per model; shaded, what SW2 reads between two fresh data
    sets of the last model's size (its legend names the size)."""
    fig = go.Figure()
    for k, r in enumerate(results):
        fig.add_trace(
            go.Scatter(
                x=list(r.sw2),
                y=list(r.sw2.values()),
                mode="lines+markers",
                name=r.name,
                line={"color": SERIES_COLORS[k % len(SERIES_COLORS)]},
            )
        )
    band = results[-1].reference
    add_band(fig, band, band.describe())
    nfes = sorted({n for r in results for n in r.sw2})
    fig.update_xaxes(title="NFE (Euler steps)", **LOG_AXIS, tickvals=nfes)  # the NFEs measured, nothing between
    values = [v for r in results for v in r.sw2.values()] + [band.low, band.high]
    fig.update_yaxes(title="sliced W₂ to fresh data", **log_axis(values))  # 1 step to 32: a factor of 20 or more
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.25})
    return fig


def paths_figure(results: list[ob.ObjectiveResult], height: int = 380) -> go.Figure:
    """The first paths of each model's fine Euler run, side by side, with their straightness in the title."""
    titles = [f"{r.name}: chord/length {r.chord_ratio:.2f}" for r in results]
    fig = make_subplots(1, len(results), subplot_titles=titles, horizontal_spacing=0.03)
    for k, r in enumerate(results, start=1):
        x = r.paths.states[:, :SHOWN_PATHS, :2].double().numpy()  # 3-D data: the first two axes
        xs, ys = polylines(x)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"width": 1, "color": SERIES_COLORS[(k - 1) % 8]},
                hoverinfo="skip",
                showlegend=False,
            ),
            1,
            k,
        )
        fig.add_trace(
            go.Scatter(
                x=x[0, :, 0],
                y=x[0, :, 1],
                mode="markers",
                marker={"size": 3, "color": "#999"},
                showlegend=False,
                hoverinfo="skip",
            ),
            1,
            k,
        )
    fig.update_layout(height=height, margin={**MARGIN, "t": 50})
    for k in range(1, len(results) + 1):
        fig.update_yaxes(scaleanchor=f"x{k if k > 1 else ''}", row=1, col=k)
    return fig
