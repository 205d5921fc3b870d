"""Load settings from a file onto the Guidance page's two studies: the table (CSV) the Scale sweep or the Exact 2-D
mixture exported carries its record (core/labs/provenance.py: the model, sampler, steps and samples, and a study
part with each series' method, settings and scales). Each tab's controls take it back (its model source or class
and blur, sampler, steps, samples, and the series where the method controls allow them), so that the tab builds
the same settings as the file's; what cannot be set gets a sentence. The uploader and its callback are
ui/common/from_file.py's."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.diffusion.guidance import Guidance
from core.diffusion.samplers import SAMPLERS
from core.errors import BadInputError
from core.labs import provenance
from core.text import plain_label
from ui.common import from_file
from ui.common.from_file import Note, put_choice, put_number
from ui.guidance import exact, sweep
from ui.guidance.controls import CHOICES, INTERVAL_SIGMAS, LAMBDA_CHOICES, SCALE_CHOICES

TABS = {sweep.STUDY: "Scale sweep", exact.STUDY: "Exact 2-D mixture"}  # the study each tab's table holds


def sweep_box() -> None:
    """The Scale sweep's "Load settings from a file" (in the tab)."""
    from_file.load_settings_box(
        "gd",
        restore_sweep,
        kinds=("csv", "json"),
        what="The model, sampler, steps, samples and series its table carries",
        where=st,
    )


def exact_box() -> None:
    """The Exact 2-D mixture's "Load settings from a file" (in the tab)."""
    from_file.load_settings_box(
        "gx",
        restore_exact,
        kinds=("csv", "json"),
        what="The class, sampler, steps, samples, the guide's blur and the series its table carries",
        where=st,
    )


def restore_sweep(key: str, records: list[dict[str, Any]], name: str) -> list[Note]:
    """The sweep's record put into its controls (`key`-...)."""
    rec = _study(records, name, sweep.STUDY)
    s, study = provenance.settings_from(rec), from_file.part(rec, "study")
    source = study.get("source")
    if not isinstance(source, str) or source not in sweep.SOURCES:
        raise BadInputError(f"The file's model {plain_label(str(source), 40)!r} is not one this tab samples.")
    state = st.session_state
    state[f"{key}-source"] = source
    state[f"{key}-sampler"] = s.sampler
    notes = put_number(f"{key}-steps", int(s.steps), 2, sweep.MAX_STEPS, "steps")
    notes += put_choice(f"{key}-n-{source}", int(s.batch), sweep.SAMPLES, "samples per scale")
    series = provenance.series_from(rec)
    notes += restore_plan(key, series)
    if any(g.method == "auto" for _, g, _ in series) and source == "pixel":
        if s.guide in (None, sweep.GUIDES["pixel"]):
            state[f"{key}-guide"] = sweep.BUNDLED
        else:
            state[f"{key}-guide"], state[f"{key}-guide-path"] = sweep.OWN_GUIDE, s.guide
            shown = plain_label(s.guide, 80)
            notes.append(("info", f"Autoguidance's guide is the file's checkpoint folder {shown}, if it is here."))
    return [_restored(rec, "Sweep"), *notes, *_seed(s.seed)]


def restore_exact(key: str, records: list[dict[str, Any]], name: str) -> list[Note]:
    """The exact study's record put into its controls (`key`-...)."""
    rec = _study(records, name, exact.STUDY)
    s, study = provenance.settings_from(rec), from_file.part(rec, "study")
    notes = put_choice(f"{key}-class", s.label, (0, 1), "class")
    st.session_state[f"{key}-sampler"] = s.sampler
    notes += put_number(f"{key}-steps", int(s.steps), 2, exact.MAX_STEPS, "steps")
    notes += put_choice(f"{key}-n", int(s.batch), exact.SAMPLES, "samples per scale")
    blur = study.get("blur")
    if isinstance(blur, (int, float)) and not isinstance(blur, bool):
        notes += put_choice(f"{key}-blur", float(blur), exact.BLURS, "guide's blur")
    else:
        notes.append(("warning", "The file names no guide's blur; it was left."))
    notes += restore_plan(key, provenance.series_from(rec))
    return [_restored(rec, "Measure"), *notes, *_seed(s.seed)]


def restore_plan(prefix: str, series: list[tuple[str, Guidance, tuple[float, ...]]]) -> list[Note]:
    """The series put into the method controls (ui/guidance/controls.plan_controls): the methods in the file's
    order, the scales (and CFG++'s λ), the interval, rescale's φ and APG's settings, each where its control holds
    it, else a sentence."""
    state, notes = st.session_state, []
    methods, scales, lambdas = [], [], []
    for _, g, ws in series:
        method = "interval" if g.method == "cfg" and g.interval is not None else g.method
        if method in methods:
            notes.append(("warning", f"The file has more than one {CHOICES[method]} series; this tab runs one."))
            continue
        methods.append(method)
        (lambdas if method == "cfg++" else scales).append(ws)
        if method == "interval":
            lo, hi = g.interval
            if lo in INTERVAL_SIGMAS and hi in INTERVAL_SIGMAS:
                state[f"{prefix}-interval"] = (lo, hi)
            else:
                notes.append(("warning", f"The file's interval ({lo:g}, {hi:g}] is not one this tab offers."))
        elif method == "rescale":
            notes += put_number(f"{prefix}-rescale-phi", g.rescale, 0.0, 1.0, "rescale φ")
        elif method == "apg":
            notes += put_number(f"{prefix}-apg-eta", g.eta, 0.0, 1.0, "APG η")
            notes += put_number(f"{prefix}-apg-beta", g.momentum, -0.9, 0.9, "APG momentum β")
            notes += put_number(f"{prefix}-apg-cap", g.threshold, 0.0, 1000.0, "APG norm cap r")
    state[f"{prefix}-methods"] = methods
    notes += _scales(f"{prefix}-scales", scales, SCALE_CHOICES, "scales w")
    notes += _scales(f"{prefix}-lambdas", lambdas, LAMBDA_CHOICES, "CFG++ λ")
    return notes


def _scales(key: str, sets: list[tuple[float, ...]], choices: tuple[float, ...], what: str) -> list[Note]:
    """The series' scales put into one multiselect (every series here runs the same ones)."""
    if not sets:
        return []
    notes = []
    if len(set(sets)) > 1:
        notes.append(("warning", f"The file's series ran different {what}; this tab runs them all at each."))
    wanted = sorted({w for ws in sets for w in ws})
    kept = [w for w in wanted if w in choices]
    if missing := [w for w in wanted if w not in choices]:
        shown = ", ".join(f"{w:g}" for w in missing[:8])
        notes.append(("warning", f"The file's {what} {shown} are not among this tab's; they were left out."))
    st.session_state[key] = kept
    return notes


def _study(records: list[dict[str, Any]], name: str, page: str) -> dict[str, Any]:
    """The file's record, when it is this tab's study; else a sentence saying where it belongs."""
    rec = records[0]
    found = from_file.study_page(rec)
    if found == page:
        return rec
    if found is None:
        raise BadInputError(f"{name} holds sampling runs, not a guidance study: load it on the page that made it.")
    if found in TABS:
        raise BadInputError(f"{name} holds the {TABS[found]} tab's study: load it in that tab.")
    raise BadInputError(f"{name} holds a study of another page ({found}): load it there.")


def _restored(rec: dict[str, Any], button: str) -> Note:
    s = from_file.part(rec, "settings")
    sampler = SAMPLERS[s["sampler"]].title  # checked by settings_from
    series = ", ".join(plain_label(name, 60) for name, _, _ in provenance.series_from(rec))
    return ("success", f"Restored from the file: {sampler}, {s['steps']} steps, series {series}. Press **{button}**.")


def _seed(seed: int) -> list[Note]:
    if seed == 0:
        return []
    return [("warning", f"The file's seed is {seed}; this tab always starts from seed 0.")]
