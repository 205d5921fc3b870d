"""The Over training tab: one run's checkpoints at chosen steps from the same noise. Runs come from the runs
folder (pixel models: `python -m zoo train` saves checkpoints) or the Toy lab's current model (kept in memory,
every 250 steps); toy checkpoints are measured by SW2 and MMD to fresh data against the step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.data.images import png_bytes
from core.diffusion.samplers import SAMPLERS
from core.labs.compare import captioned
from core.labs.toy import ToyRun, distances, run_sampler
from ui.common.widgets import attempt
from ui.compare_checkpoints import checkpoints, sources
from ui.compare_checkpoints.figures import cloud_image, clouds_over_steps, over_steps_figure
from ui.compare_checkpoints.views import pixel_over_training
from ui.toy import state as toy_state

TOY = "ot-toy"


def tab() -> None:
    st.markdown(
        "One run's checkpoints at the steps you pick, all from the same noise: a row per step, and the quality "
        "measure against the step."
    )
    runs = sources.over_training_runs()
    if not runs:
        st.info(
            "No run with checkpoints yet: `python -m zoo train RECIPE` saves them in the runs folder (every "
            "`checkpoint_every` steps), and the Toy lab keeps its model's every 250 steps."
        )
        return
    run, steps = sources.pick_run_steps(runs, "ot", default_count=6)
    if run is None or not steps:
        st.info("Pick a run and the steps to compare.")
        return
    toy = toy_state.current_run()
    if toy is not None and run is toy.log:
        toy_over_training(toy, steps)
    else:
        pixel_over_training(run.name, {s: sources.checkpoint_folder(run, s) for s in steps})


def _toy_controls(run: ToyRun) -> tuple[str, int, int, int]:
    c1, c2, c3, c4 = st.columns(4)
    names = list(SAMPLERS)
    sampler = c1.selectbox("Sampler", names, names.index("heun"), format_func=lambda n: SAMPLERS[n].title,
                           key="ot-toy-sampler")  # fmt: skip
    steps = int(c2.number_input("Steps", 1, min(1000, run.schedule.num_steps), 32, key="ot-toy-steps"))
    n = int(c3.number_input("Points", 100, 5000, 2000, 100, key="ot-toy-n"))
    seed = int(c4.number_input("Seed", 0, 2**31 - 100, 0, key="ot-toy-seed"))
    return sampler, steps, n, seed


def _sample_steps(run: ToyRun, steps: list[int], settings: tuple[str, int, int, int]) -> None:
    """Each checkpoint sampled from the same noise and measured, with one progress bar and a Stop for all;
    each step's result is kept as soon as it is done."""
    sampler, n_steps, n, seed = settings
    with checkpoints.progress_and_stop("Sampling…", "Keeps the steps done so far.", TOY) as report:
        for k, step in enumerate(steps):
            result = run_sampler(run, sampler, n_steps, n, seed=seed, path_points=1, at_step=step)
            st.session_state[f"{TOY}-{run.name}-{step}"] = (settings, result, distances(result, run, seed))
            report((k + 1) / len(steps), sources.step_label(step))


def toy_over_training(run: ToyRun, steps: list[int]) -> None:
    settings = _toy_controls(run)
    if st.button("Sample and measure", type="primary", key="ot-toy-go"):
        attempt(_sample_steps, run, steps, settings)
    done = [(s, kept) for s in steps if (kept := st.session_state.get(f"{TOY}-{run.name}-{s}")) is not None]
    if not done:
        return
    if any(kept[0] != settings for _, kept in done):
        st.info("Some rows are from earlier settings: press **Sample and measure** for the current ones.")
    data = run.cloud.points[:5000].double().numpy()
    panels = [(sources.step_label(s), kept[1].samples.numpy()) for s, kept in done]
    st.plotly_chart(clouds_over_steps(panels, data), key="ot-toy-clouds")
    rows = [{"step": s, "SW2": d["swd"], "SW2 floor": d["swd_floor"], "MMD": d["mmd"], "MMD floor": d["mmd_floor"],
             "seconds": round(r.seconds, 3), "NFE": r.nfe} for s, (_, r, d) in done]  # fmt: skip
    table = pd.DataFrame(rows)
    series = {"SW2": (table["SW2"], None), "MMD": (table["MMD"], None)}
    fresh = "two fresh data sets"
    floors = {"SW2": (float(table["SW2 floor"].iloc[0]), fresh), "MMD": (float(table["MMD floor"].iloc[0]), fresh)}
    title = "Distance to fresh data (standardised units)"
    st.plotly_chart(over_steps_figure(table["step"], series, floors, title, log_y=True), key="ot-toy-dist")
    st.dataframe(table.round(4), hide_index=True, width="stretch")
    everything = np.concatenate([data[:, :2], *[p[:, :2] for _, p in panels]])
    box = (np.quantile(everything, 0.002, axis=0), np.quantile(everything, 0.998, axis=0))
    images = [(f"{run.name} {t}", cloud_image(p, data, box)) for t, p in panels]
    left, right = st.columns(2)
    left.download_button("Download the grid (PNG)", lambda: png_bytes(captioned(images)), "checkpoints.png",
                         "image/png", key="ot-toy-png", on_click="ignore")  # fmt: skip
    right.download_button("Download the table (CSV)", table.to_csv(index=False).encode(), "checkpoints.csv",
                          "text/csv", key="ot-toy-csv", on_click="ignore")  # fmt: skip
