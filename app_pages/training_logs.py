"""Training logs: loss curves, sample grids and settings of every run, one at a time or compared."""

import streamlit as st

from core.data.images import gif_bytes
from core.runs.record import evenly
from ui.common.runs import bundled_runs, default_runs_folder, folder_runs
from ui.common.session_runs import session_runs
from ui.common.widgets import attempt
from ui.training_logs import views
from ui.training_logs.figures import config_table, curves_figure, metrics_csv, read_grid

MAX_FRAMES = 50  # an animation of more grids costs seconds to encode (a TensorBoard run may log 200)

st.title("Training logs")
st.markdown(
    "Every bundled model ships the log of the run that made it; runs of `python -m zoo train` land in a runs "
    "folder; models you train on the other pages this session appear here too."
)

folder = st.text_input(
    "Runs folder",
    default_runs_folder(),
    key="logs-folder",
    max_chars=1024,
    help="A folder under the runs folder (ATLAS_RUNS) or the roots in ATLAS_ALLOWED_ROOTS.",
)
runs = bundled_runs()
found, folder_notes = attempt(folder_runs, folder) or ([], [])
runs += found + session_runs()
for note in folder_notes[:5]:
    st.caption(f"Note: {note}.")
if not runs:
    st.info("No runs yet: train a model on the Toy lab page, or run `python -m zoo train RECIPE`.")
    st.stop()

labels = {f"{r.name} · {r.source}": r for r in runs}
chosen = st.multiselect(
    "Runs", list(labels), views.default_runs(labels), key="logs-runs", help="Pick several to compare them."
)
selected = [labels[c] for c in chosen]
if not selected:
    st.stop()

keys = list(dict.fromkeys(k for r in selected for k in r.keys if k not in ("seconds",)))
if not keys:
    st.warning("The chosen runs logged no numeric metrics.")
else:
    c1, c2, c3, c4 = st.columns([2, 1, 1.4, 1])
    shown = c1.multiselect("Metrics", keys, [k for k in ("loss",) if k in keys] or keys[:1], key="logs-keys")
    against = c2.radio("Against", ["step", "seconds"], horizontal=True, key="logs-x")
    smoothing = c3.slider("Smoothing (EMA)", 0.0, 0.99, 0.6, 0.01, key="logs-smooth")
    log_y = c4.toggle("Log scale", key="logs-log")
    for key in shown:
        st.plotly_chart(curves_figure(selected, key, against, smoothing, log_y), width="stretch", key=f"logs-fig-{key}")
    csv = lambda: metrics_csv(selected)  # noqa: E731 (built only when clicked)
    st.download_button("Download the metrics (CSV)", csv, "metrics.csv", "text/csv", key="logs-csv", on_click="ignore")

if len(selected) > 1 and any(r.samples for r in selected):
    st.caption("Sample grids show for one run at a time: keep only that run selected to see its grids.")
if len(selected) == 1:
    run = selected[0]
    hw = run.config.get("hardware", {})
    facts = [f"source: {run.source}"]
    if "wall_seconds" in run.config:
        facts.append(f"training time {float(run.config['wall_seconds']) / 60:.1f} min")
    if hw:
        facts.append(f"{hw.get('device_name', hw.get('device', '?'))}, torch {hw.get('torch', '?')}")
    st.caption(" · ".join(facts) + f" · {len(run.metrics):,} records")
    for note in run.notes:
        st.info(f"Note: {note}.")
    if run.samples:
        st.subheader("Samples during training")
        steps = [s for s, _ in run.samples]
        step = (
            st.select_slider("Step", steps, value=steps[-1], key=f"logs-step-{run.name}")
            if len(steps) > 1
            else steps[0]
        )
        path = dict(run.samples)[step]
        left, right = st.columns(2)
        grid = attempt(read_grid, path, run.roots)
        if grid is not None:
            left.image(grid, caption=f"step {step:,}", width=360)
        if run.checkpoints:
            left.caption(views.at_step(run, step))
        if len(steps) > 1 and right.toggle("Animate over training", key="logs-animate"):
            frames = [
                f for _, p in evenly(run.samples, MAX_FRAMES) if (f := attempt(read_grid, p, run.roots)) is not None
            ]
            if frames:
                right.image(gif_bytes(frames, duration_ms=500), width=360)
views.checkpoints(selected)

st.subheader("Settings" if len(selected) == 1 else "Settings side by side")
table = config_table(selected)
if len(selected) > 1:
    only_diff = st.toggle("Only the settings that differ", value=True, key="logs-diff")
    shown_table = table[table["differs"]] if only_diff else table
    st.dataframe(
        shown_table.style.apply(lambda row: ["background-color: #fff3cd" if row["differs"] else ""] * len(row), axis=1),
        width="stretch",
    )
else:
    st.dataframe(table.drop(columns="differs"), width="stretch")
