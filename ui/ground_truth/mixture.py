"""The mixture a person shapes: a preset edited in a table and two sliders, or a mixture fitted to a toy set."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.data.toy import TOY_SETS
from core.diffusion.mixture import GaussianMixture
from core.labs.ground_truth import mixtures
from ui.common.memo import Memo
from ui.common.session_runs import TOY_CLOUD

FIT_POINTS = 4000


@dataclass(frozen=True)
class FitKey:
    data: str  # the points' key: a built-in set's name, or the toy lab's data key
    components: int


FITTED = Memo[FitKey, GaussianMixture]("gt-fit")


@dataclass(frozen=True)
class Mixture:
    mix: GaussianMixture
    key: str  # identifies the law (results computed for another key are stale)
    title: str


def _fitted(source: str, components: int) -> tuple[GaussianMixture, str]:
    """A mixture fitted to a built-in 2-D set (default shape) or to the toy lab's current 2-D data."""
    if source == "toy-lab":
        key, cloud = TOY_CLOUD.latest()
        points, title = cloud.points, f"the toy lab's {cloud.title}"
    else:
        spec = TOY_SETS[source]
        points, title, key = spec.cloud(FIT_POINTS, seed=0).points, spec.title, source  # at its default shape
    return FITTED.make(FitKey(key, components), lambda: mixtures.fit_mixture(points, components)), (
        f"{components} Gaussians fitted to {title}"
    )


def mixture_picker() -> Mixture:
    """The controls; raises BadInputError (a sentence) for a table that is not a mixture."""
    how = st.segmented_control(
        "Mixture", ["Shape one", "Fit to a toy set"], default="Shape one", required=True, key="gt-how"
    )
    if how == "Fit to a toy set":
        sets = [s.name for s in TOY_SETS.values() if s.dim == 2]
        toy = TOY_CLOUD.latest()
        if toy is not None and toy[1].dim == 2:
            sets.insert(0, "toy-lab")
        a, b = st.columns([2, 1])
        source = a.selectbox(
            "Toy set",
            sets,
            format_func=lambda n: "The toy lab's current data" if n == "toy-lab" else TOY_SETS[n].title,
            key="gt-fit-set",
            help="Built-in 2-D sets at their default shape.",  # short: a long tooltip here ran off the page's left
        )
        k = b.slider("Components", 1, mixtures.MAX_FIT_COMPONENTS, 8, key="gt-fit-k")
        with st.spinner("Fitting the mixture by EM…"):
            mix, title = _fitted(source, k)
        rows = mixtures.mixture_rows(mix)
        st.caption(f"{title} (per-axis spreads; the table shows their RMS).")
        st.dataframe(pd.DataFrame(rows, columns=["x", "y", "std", "weight"]).round(3), hide_index=True, height=180)
        return Mixture(mix, json.dumps(["fit", source, k, rows]), title)
    a, b, c = st.columns([2, 1, 1])
    preset = a.selectbox("Preset", list(mixtures.PRESETS), key="gt-preset")
    spread = b.slider("Spread ×", 0.25, 3.0, 1.0, 0.05, key="gt-spread")
    distance = c.slider("Distance ×", 0.0, 2.0, 1.0, 0.05, key="gt-distance")
    # Said in a caption, not as help: a tooltip of these narrow columns ran past the page's left edge.
    st.caption(
        "Spread × multiplies every std; distance × moves the means towards (< 1) or away from (> 1) their "
        "weighted centre."
    )
    frame = pd.DataFrame([list(r) for r in mixtures.PRESETS[preset]], columns=["x", "y", "std", "weight"])
    edited = st.data_editor(
        frame, num_rows="dynamic", hide_index=True, key=f"gt-table-{preset}", height=180, width="stretch"
    )
    rows = edited.to_numpy(dtype=float, na_value=float("nan")).tolist()
    mix = mixtures.shaped_mixture(rows, spread, distance)
    title = f"{preset}" + ("" if spread == distance == 1.0 else f", spread ×{spread:g}, distance ×{distance:g}")
    return Mixture(mix, json.dumps(["shape", rows, spread, distance]), title)
