"""Load settings from a file onto the Samplers page: a PNG, GIF or JSON the Atlas exported (core/labs/provenance.py)
put back into the sidebar's widgets, so that Generate draws the same images from the same seed. The uploader and
its callback are ui/common/from_file.py's; this module says which widget each setting goes to, the controls a
folder's own scheduler config adds (ui/samplers/controls.py) among them, and gives a sentence for each setting
that cannot be set here."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.diffusion.guidance import METHODS
from core.diffusion.schedules import TIMESTEP_SPACINGS
from core.errors import AtlasError, BadInputError
from core.labs import provenance
from core.labs.samplers import MAX_BATCH, TYPED, SamplerSettings
from core.text import plain_label
from ui.common import from_file
from ui.common.cache import hub_model, registry, zoo_model
from ui.common.from_file import Note, put_number
from ui.common.models import TYPED as TYPED_REPO
from ui.common.models import guide_models, pixel_models

MAX_SEED = 2**31 - 1 - MAX_BATCH  # the page's seed box's
GUIDANCE_MAX = 10.0  # the page's guidance-scale slider's


def load_settings_box(key: str) -> None:
    """The sidebar's "Load settings from a file", whose file's settings go into the widgets named `key`-...
    (before they are drawn), with the sentences of what was and was not restored."""
    from_file.load_settings_box(
        key,
        restore,
        kinds=("png", "gif", "json"),
        what="The settings every download carries (model, sampler, options, grid, seed, images, class, guidance)",
    )


def restore(key: str, records: list[dict[str, Any]], name: str) -> list[Note]:
    """The file's first run put into the widgets of `key` (`apply`); a study of another page is refused."""
    if (page := from_file.study_page(records[0])) is not None:
        raise BadInputError(f"{name} holds a study of another page ({page}), not one sampling run: load it there.")
    notes = apply(key, records[0], provenance.settings_from(records[0]))
    if len(records) > 1:
        notes.append(("info", f"{name} holds {len(records)} runs; the first was restored."))
    return notes


def apply(key: str, rec: dict[str, Any], s: SamplerSettings) -> list[Note]:
    """Set the sidebar widgets of `key` to the settings `s` (of the record `rec`); returns (level, sentence)
    pairs: what was restored, and one sentence per setting that could not be."""
    state, notes = st.session_state, []
    model = from_file.part(rec, "model")
    name = model.get("name")
    label = plain_label(str(name), 60)
    if isinstance(name, str) and name in pixel_models():
        state[f"{key}-model"] = state[f"{key}-defaults-of"] = name  # the widgets set below are this model's
        pinned = registry().model(name).sha256
        theirs = model.get("sha256") if isinstance(model.get("sha256"), dict) else {}
        if any(f in pinned and pinned[f] != v for f, v in theirs.items()):
            notes.append(("warning", f"{label} here has other weights than the file's (their sha256 differ)."))
    else:
        source = model.get("source")
        where = f" ({plain_label(str(source), 80)})" if source else ""
        notes.append(
            (
                "warning",
                f"The file's model {label}{where} is not in this zoo; the settings were put on the model chosen.",
            )
        )
    loaded = _chosen(key)
    state[f"{key}-sampler"] = s.sampler
    state[f"{key}-spacing"] = s.spacing
    if s.spacing == TYPED and s.grid is not None:
        levels = s.grid[:-1] if s.grid[-1] == 0 else s.grid
        state[f"{key}-typed"] = ", ".join(repr(float(v)) for v in levels)  # repr: the same floats read back
    else:
        state[f"{key}-steps"] = int(s.steps)
    for option, value in s.options.items():
        if option != "noise_until" and value is not None:
            state[f"{key}-{s.sampler}-{option}"] = value
    state[f"{key}-quiet"] = s.noise_until is not None
    if s.noise_until is not None:
        state[f"{key}-quiet-step"] = int(s.noise_until)
    cap = loaded.schedule.sampling_cap if loaded is not None and loaded.schedule is not None else None
    state[f"{key}-cap"] = s.max_sigma is not None
    if s.max_sigma is not None and cap is not None and s.max_sigma != cap:
        notes.append(
            ("warning", f"The file starts at σ = {s.max_sigma:g}; this page starts at σ = {cap:g} or the top.")
        )
    state[f"{key}-clip"] = bool(s.clip)
    notes += _folder(key, s, loaded)
    if 0 <= s.seed <= MAX_SEED:
        state[f"{key}-seed"] = int(s.seed)
    else:
        notes.append(("warning", f"The file's seed {s.seed} is beyond this page's 0 to {MAX_SEED:,}; it was left."))
    if s.batch <= MAX_BATCH:
        state[f"{key}-batch"] = int(s.batch)
    else:
        state[f"{key}-batch"] = MAX_BATCH
        notes.append(
            ("warning", f"The file drew {s.batch} images; this page draws at most {MAX_BATCH} (the first ones).")
        )
    classes = loaded.num_classes if loaded is not None else 10
    if s.label is not None and s.label >= classes:
        notes.append(("warning", f"The file asks for class {s.label}; this model has {classes} classes."))
    else:
        state[f"{key}-class"] = "none" if s.label is None else int(s.label)
    if s.label is not None:
        notes += _guidance(key, s, loaded)
    restored = "Restored from the file: " + provenance.describe(rec) + ". Press **Generate**."
    return [("success", restored), *notes]


def _chosen(key: str) -> Any:
    """The model the page will show once the file's settings are in (the file's, or the one already picked),
    loaded; None where it cannot be (the page says why when it draws the model's box)."""
    choice = st.session_state.get(f"{key}-model") or next(iter(pixel_models()), None)
    try:
        if choice == TYPED_REPO:
            repo = str(st.session_state.get(f"{key}-model-repo", "")).strip()
            return hub_model(repo) if repo else None
        return zoo_model(choice) if choice in pixel_models() else None
    except AtlasError:
        return None


def _guidance(key: str, s: SamplerSettings, loaded: Any) -> list[Note]:
    state, g, notes = st.session_state, s.guiding, []
    state[f"{key}-guidance"] = g.method
    if g.method == "cfg++":
        notes += put_number(f"{key}-lambda", float(g.scale), 0.0, 1.0, "CFG++ λ")
    else:
        notes += put_number(f"{key}-cfg", float(g.scale), 0.0, GUIDANCE_MAX, "guidance scale")
    if g.method == "rescale":
        notes += put_number(f"{key}-rescale-phi", float(g.rescale), 0.0, 1.0, "rescale φ")
    if g.method == "apg":
        notes += put_number(f"{key}-apg-eta", float(g.eta), 0.0, 1.0, "APG η")
        notes += put_number(f"{key}-apg-beta", float(g.momentum), -0.9, 0.9, "APG momentum β")
        notes += put_number(f"{key}-apg-cap", float(g.threshold), 0.0, 1000.0, "APG norm cap r")
    if g.interval is not None:
        notes.append(("warning", "The file guides in a σ interval; this page guides at every σ."))
    if g.method == "auto":
        guides = guide_models(loaded) if loaded is not None else {}
        if s.guide in guides:
            state[f"{key}-guide"] = s.guide
        else:
            shown = plain_label(str(s.guide), 60)
            notes.append(("warning", f"The file's guide {shown} ({METHODS['auto']}) is not one that can guide here."))
    return notes


def _folder(key: str, s: SamplerSettings, loaded: Any) -> list[Note]:
    """The controls a folder's own scheduler config adds (ui/samplers/controls._pipeline), set where the model
    shown has them (each within its control's range, else a sentence); a sentence for what can be set nowhere."""
    notes: list[Note] = []
    if s.spread_classes:
        notes.append(
            (
                "warning",
                "The file spreads its images over the classes (image k of class k mod 10, a guidance study's); "
                "this page draws the one class chosen.",
            )
        )
    if loaded is None or loaded.scheduler is None:
        return notes + _not_here(s)
    state = st.session_state
    if s.clip:
        notes += put_number(f"{key}-clip-range", float(s.clip_range), 0.01, 1e6, "clipping range")
    state[f"{key}-threshold"] = s.thresholding is not None
    if s.thresholding is not None:
        ratio, top = s.thresholding
        notes += put_number(f"{key}-ratio", float(ratio), 0.5, 1.0, "thresholding quantile")
        notes += put_number(f"{key}-max", float(top), 1.0, 1e6, "thresholding max value")
    if s.spacing == "leading":
        notes += put_number(f"{key}-offset", int(s.steps_offset), 0, 100, "steps_offset")
    state[f"{key}-to-zero"] = bool(s.to_zero)
    if s.spacing in TIMESTEP_SPACINGS:
        state[f"{key}-one-more"] = bool(s.one_more)
    return notes


def _not_here(s: SamplerSettings) -> list[Note]:
    """A sentence for each setting of the file that acts on its grid or x0 but has a control only for a model with
    its own scheduler config (this one has none)."""
    fields = {
        f"clipping to ±{s.clip_range:g}": s.clip and s.clip_range != 1.0,
        "dynamic thresholding": s.thresholding is not None,
        f"steps_offset {s.steps_offset}": s.spacing == "leading" and s.steps_offset != 0,
        "DPM-Solver's n + 1 timesteps": s.one_more and s.spacing in ("leading", "linspace"),
        "a grid that ends above σ = 0": not s.to_zero,
    }
    return [
        (
            "warning",
            f"The file uses {what}, which this page sets only for a model with its own scheduler config; "
            "this model samples without it.",
        )
        for what, used in fields.items()
        if used
    ]
