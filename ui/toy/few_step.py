"""The toy lab's sixth section: few-step and one-step generators beside reflow and coupled flow matching, on the
lab's data (core/labs/few_step.py), each checked against the exact flow map where the data is a Gaussian
mixture; and the Gaussian -> Gaussian study of minibatch OT. Long jobs with a Stop: they run in the page's own
run, not a fragment; what each finished is kept (jobs.Tally)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import streamlit as st

from core.data.toy import PointCloud
from core.diffusion.flow_map import ErrorField
from core.labs import few_step as fs
from core.labs.toy import ToyRun, ToySettings
from ui.common import jobs, session_runs
from ui.common.jobs import Tally
from ui.common.live import job_estimate, progress_and_stop
from ui.common.memo import Memo
from ui.common.tables import show_table
from ui.common.widgets import attempt, run_job
from ui.toy.figures import (
    error_fields_figure,
    nfe_ladder_figure,
    pairs_figure,
    small_multiples_figure,
    study_figure,
)

DEFAULT_METHODS = ["consistency_distillation", "shortcut", "meanflow", fs.COUPLED, fs.REFLOW]
STEP_CHOICES = [100, 200, 500, 1000, 2000, 5000]
STOP_HELP = "Keeps the models trained and measured so far."
SHORT = {"consistency_distillation": "cd", "consistency_training": "ct", "progressive": "pd"}  # in model names


@dataclass(frozen=True)
class FewStepKey:
    data: str
    methods: tuple[str, ...]
    coupling: str
    steps: int
    n: int
    settings: ToySettings
    teacher: str | None  # the lab model taught with, or None: a teacher trained here


@dataclass(eq=False)
class Compared:
    tally: Tally
    results: dict[str, fs.MethodResult] = field(default_factory=dict)


@dataclass(eq=False)
class Study:
    tally: Tally
    maps: list[fs.StudyPoint] = field(default_factory=list)
    pairs: list = field(default_factory=list)  # couplings.StudyRow per size: the OT pairs themselves


RESULTS = Memo[FewStepKey, Compared]("toy-few-step")
FIELDS = Memo[tuple[FewStepKey, float], dict[str, ErrorField]]("toy-few-step-fields")
STUDY = Memo[tuple[int, ...], Study]("toy-few-step-study")


def _train(cloud: PointCloud, key: FewStepKey, teacher: ToyRun | None) -> None:
    record = jobs.start(RESULTS, key, Compared(Tally(planned=len(key.methods) + 1)))
    FIELDS.clear()
    total = len(key.methods) + (teacher is None)
    done = {"models": 0}

    def callback(method: str, trainer) -> None:
        share = (done["models"] + trainer.step / key.steps) / max(total, 1)
        count = f"{done['models'] + 1} of {total}"
        bar.show(share, f"{fs.TITLES[method]} ({count}): step {trainer.step:,} of {key.steps:,}")

    names = lambda m: session_runs.next_name(f"toy-{SHORT.get(m, m.replace('_', '-'))}")  # noqa: E731
    with progress_and_stop("Training the teacher…", "toy-fs-stop", STOP_HELP) as bar:
        found = fs.compare_few_step(
            cloud,
            key.settings,
            key.methods,
            key.steps,
            key.n,
            key.settings.seed,
            coupling=key.coupling,
            teacher=teacher,
            callback=callback,
            names=names,
        )
        for run, result in found:
            if run is not None:
                session_runs.add(run.log)
            if not record.tally.add(partial(record.results.__setitem__, result.method, result)):
                return  # a later run shows this job as stopped: it keeps nothing more
            if result.method != fs.TEACHER or teacher is None:  # a lab teacher was measured, not trained here
                done["models"] += 1


def _study(sizes: tuple[int, ...], steps: int) -> None:
    record = jobs.start(STUDY, sizes, Study(Tally(planned=len(sizes)), pairs=fs.study_rows(sizes=sizes)))
    with progress_and_stop("Gaussian → Gaussian…", "toy-fs-study-stop", "Keeps the batch sizes trained so far.") as bar:
        done = {"k": 0}

        def callback(size: int, trainer) -> None:
            share = (done["k"] + trainer.step / steps) / len(sizes)
            bar.show(share, f"OT batch {size} ({done['k'] + 1} of {len(sizes)}): step {trainer.step:,} of {steps:,}")

        for point in fs.gaussian_study(sizes, steps, callback=callback):
            if not record.tally.add(partial(record.maps.append, point)):
                return
            done["k"] += 1


def few_step_section(cloud: PointCloud, base: ToySettings, lab_run: ToyRun | None) -> None:
    st.subheader("6 · Few steps, one step")
    st.markdown(
        "Generators that need one or a few network evaluations, trained side by side with the same data, network, "
        "steps, batch and seed: a flow-matching **teacher** (sampled with Euler), then consistency distillation "
        "and training, shortcut models, MeanFlow, progressive distillation, flow matching whose minibatches pair "
        "data and noise by a **coupling**, and the teacher's **reflow**. Each is sampled from the same noise at "
        "NFE 1, 2, 4 and 8. On a Gaussian mixture every one-step map is checked against the exact answer."
    )
    a, b = st.columns([3, 1])
    chosen = a.multiselect(
        "Methods",
        list(fs.CHOOSABLE),
        default=DEFAULT_METHODS,
        format_func=fs.TITLES.get,
        key="toy-fs-methods",
    )
    coupling = b.selectbox(
        "Coupling", list(fs.COUPLING_TITLES), 1, format_func=fs.COUPLING_TITLES.get, key="toy-fs-coupling"
    )
    c, d, e = st.columns([2, 2, 3])
    steps = c.select_slider("Training steps (each)", STEP_CHOICES, 1000, key="toy-fs-steps")
    n = d.select_slider("Points measured", [500, 1000, 2000], 1000, key="toy-fs-n")
    teach = fs.can_teach(lab_run, cloud) and e.checkbox(
        "Teach with section 2's flow model", True, key="toy-fs-reuse", help="Else a teacher is trained here."
    )
    teacher = lab_run if teach else None
    e.caption(f"Batch {base.batch_size}, MLP {base.width}×{base.depth}, seed {base.seed} (section 2's).")
    fits = job_estimate(lambda: fs.estimate_seconds(base, cloud.dim, chosen, int(steps), coupling, teacher is not None))
    clicked = st.button("Train and compare", type="primary", key="toy-fs-go", disabled=not fits)
    key = FewStepKey(
        cloud.key, tuple(chosen), coupling, int(steps), int(n), base, None if teacher is None else teacher.name
    )
    if clicked:
        run_job("few-step comparison", _train, cloud, key, teacher)
    stored = jobs.shown(RESULTS)
    if stored is None or not stored[1].results:
        if stored is not None and (said := stored[1].tally.stopped("models", "any model was done", "train again")):
            st.warning(said)
        st.info("Choose the methods and press **Train and compare**.")
    else:
        _show(cloud, *stored)
    _gaussian_study()


def _show(cloud: PointCloud, key: FewStepKey, record: Compared) -> None:
    if said := record.tally.stopped("models", "any model was done", "press Train and compare for all of them"):
        st.warning(said)
    if key.data != cloud.key:
        st.warning("These models learnt other data: train and compare again for this one.")
    results = list(record.results.values())
    for sentence in fs.verdicts(results):
        st.info(sentence, icon=":material/trending_flat:")
    show_table(rows(results), key="toy-fs-table")
    st.caption(
        "SW2 and MMD to fresh data (standardised units) at each NFE; beside them what two fresh data sets of the "
        "same size read (below it, a model is as close as data itself). Chord / length: how straight the flow's "
        "paths are (1: straight); crossings: the share of pairs of straight training paths that cross. "
        "A dash: the method has no such paths."
    )
    band = results[0].reference["sw2"]
    st.plotly_chart(nfe_ladder_figure([(r.title, r.sw2) for r in results], band), key="toy-fs-ladder")
    data = cloud.points if key.data == cloud.key else results[0].samples[8]
    st.markdown("**One step** (NFE 1) of each, over the data")
    panels = [(r.title, r.samples[1]) for r in results]
    st.plotly_chart(small_multiples_figure(panels, data), key="toy-fs-samples")
    pairs = [(f"{r.title}: {r.crossings:.1%} cross", *r.pairs) for r in results if r.crossings is not None]
    if pairs:
        st.markdown("**Training pairs** (noise → data, straight paths)")
        st.plotly_chart(pairs_figure(pairs), key="toy-fs-pairs")
    if key.data == cloud.key:
        _exact(cloud, key, results)


def rows(results: list[fs.MethodResult]) -> list[dict[str, object]]:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return [
        {
            "Method": r.title,
            "Model": r.name,
            **{f"SW2 @ {k}": round(v, 3) for k, v in r.sw2.items()},
            "SW2, two fresh sets": r.reference["sw2"].span(),
            **{f"MMD @ {k}": round(v, 4) for k, v in r.mmd.items()},
            "MMD, two fresh sets": r.reference["mmd"].span(4),
            "Chord / length": rounded(r.chord_ratio),
            "Crossings": rounded(r.crossings),
            "Seconds": round(r.seconds, 1),
        }
        for r in results
    ]


def _exact(cloud: PointCloud, key: FewStepKey, results: list[fs.MethodResult]) -> None:
    mixture = fs.exact_mixture(cloud)
    if mixture is None:
        st.caption(
            "The exact error fields need a 2-D Gaussian mixture (eight gaussians, or a mixture of your own in "
            "section 1): there the one-step maps are checked against the exact flow map."
        )
        return
    st.markdown("**Against the exact flow map** (the data is a Gaussian mixture)")
    t = st.slider("Time t of x_t", 0.1, 1.0, 0.8, 0.05, key="toy-fs-t")
    fields = FIELDS.make((key, float(t)), lambda: attempt(_fields, mixture, results, float(t)) or {})
    if not fields:
        return
    st.plotly_chart(error_fields_figure([(fs.TITLES[m], f) for m, f in fields.items()]), key="toy-fs-fields")
    means = ", ".join(f"{fs.TITLES[m]} {f.mean:.3f}" for m, f in fields.items())
    st.caption(
        f"|g(x, t) − f(x, t)|: each model's one-step map g from x_t to x₀ against the exact consistency function "
        f"f(x, t) = Φ_t→0(x), the mixture's ODE solved to 10⁻⁶ (standardised units; white: the density of x_t). "
        f"In each title the mean where the points are (weighted by that density); over the whole box: {means}."
    )
    meanflow = next((r for r in results if r.method == "meanflow"), None)
    if meanflow is not None:
        err = attempt(fs.meanflow_error, mixture, meanflow, float(t))
        if err is not None:
            st.caption(f"MeanFlow's u(z, 0, t) against the exact average velocity over [0, {t:.2f}]: RMS {err:.3f}.")


def _fields(mixture, results: list[fs.MethodResult], t: float) -> dict[str, ErrorField]:
    return {r.method: fs.error_field(mixture, r, t) for r in results}


def _gaussian_study() -> None:
    st.markdown("**Gaussian → Gaussian: minibatch OT against the exact OT map**")
    st.caption(
        "Flow matching from N(0, I) to a correlated Gaussian, its pairs coupled by minibatch OT in chunks of the "
        "sizes below (1: independent), one model per size; its one Euler step against the closed-form OT map "
        "T(x) = m + A x. Beside it, how far the minibatch OT pairs themselves are from T."
    )
    a, b, c = st.columns([3, 2, 2])
    sizes = a.multiselect("Pairs coupled at once", [1, 4, 16, 64, 128, 256], [1, 16, 128], key="toy-fs-sizes")
    steps = b.select_slider("Steps per size", [100, 200, 400, 800], 400, key="toy-fs-study-steps")
    clicked = c.button("Run the study", key="toy-fs-study-go", disabled=not sizes)
    sizes = tuple(sorted(sizes))
    if clicked:
        run_job("Gaussian study", _study, sizes, int(steps))
    stored = jobs.shown(STUDY)
    if stored is None:
        return
    record = stored[1]
    if said := record.tally.stopped("batch sizes", "any size was trained", "run the study again for all"):
        st.warning(said)
    rows = record.pairs
    maps = [(p.batch, p.map_error) for p in record.maps]
    pairs = [(r.batch, r.pair_error, r.mean_map_error) for r in rows]
    st.plotly_chart(study_figure(maps, pairs), key="toy-fs-study")
    show_table(
        [
            {
                "Pairs coupled at once": r.batch,
                "One-step map error": next((round(e, 3) for b_, e in maps if b_ == r.batch), None),
                "Pair error": round(r.pair_error, 3),
                "Mean-map error": round(r.mean_map_error, 3),
                "Pairs' mean cost": round(r.cost, 3),
            }
            for r in rows
        ],
        key="toy-fs-study-table",
    )
