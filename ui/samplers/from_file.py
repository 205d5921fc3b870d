"""Load settings from a file: a PNG or JSON the Atlas exported (core/labs/provenance.py) put back into the
Samplers page's sidebar widgets, so that Generate draws the same images from the same seed. The widgets are set
through their session-state keys (ui/samplers/controls.py's) in the uploader's callback, which runs before the
page draws them; whatever cannot be set here gets a sentence of its own."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.diffusion.guidance import METHODS
from core.errors import AtlasError, BadInputError
from core.labs import provenance
from core.labs.samplers import MAX_BATCH, TYPED, SamplerSettings
from core.limits import max_upload_bytes
from core.text import plain_label
from ui.common.cache import registry, zoo_model
from ui.common.models import guide_models, pixel_models

MAX_SEED = 2**31 - 1 - MAX_BATCH  # the page's seed box's
GUIDANCE_MAX = 10.0  # the page's guidance-scale slider's


def load_settings_box(key: str) -> None:
    """The sidebar's "Load settings from a file": an uploader whose file's settings go into the widgets named
    `key`-... (before they are drawn), and the sentences of what was and was not restored."""
    notes: list[tuple[str, str]] = st.session_state.get(f"{key}-from-file-notes", [])
    with st.sidebar.expander("Load settings from a file", expanded=bool(notes)):
        st.file_uploader(
            f"A PNG or JSON the Atlas exported (up to {max_upload_bytes() / 2**20:g} MB)",
            type=["png", "json"],
            key=f"{key}-from-file",
            on_change=_restore,
            args=(key,),
            help="The settings every download carries (model, sampler, options, grid, seed, images, class, "
            "guidance) go back into the sidebar; the same seed then draws the same images.",
        )
        for level, sentence in notes:
            getattr(st, level)(sentence)


def _restore(key: str) -> None:
    """The uploader's callback: read the file's record and set the widgets, keeping the sentences to show."""
    upload = st.session_state.get(f"{key}-from-file")
    if upload is None:
        st.session_state.pop(f"{key}-from-file-notes", None)
        return
    name = plain_label(upload.name, 80)
    try:
        if upload.size > (limit := max_upload_bytes()):
            raise BadInputError(f"{name} is larger than {limit / 2**20:g} MB, the upload limit.")
        records = provenance.read(upload.getvalue(), name)
        settings = provenance.settings_from(records[0])
        notes = apply(key, records[0], settings)
        if len(records) > 1:
            notes.append(("info", f"{name} holds {len(records)} runs; the first was restored."))
    except AtlasError as e:
        notes = [("error", str(e))]
    st.session_state[f"{key}-from-file-notes"] = notes


def apply(key: str, rec: dict[str, Any], s: SamplerSettings) -> list[tuple[str, str]]:
    """Set the sidebar widgets of `key` to the settings `s` (of the record `rec`); returns (level, sentence)
    pairs: what was restored, and one sentence per setting that could not be."""
    state, notes = st.session_state, []
    model = rec.get("model") if isinstance(rec.get("model"), dict) else {}
    name = model.get("name")
    label = plain_label(str(name), 60)
    loaded = None
    if isinstance(name, str) and name in pixel_models():
        state[f"{key}-model"] = name
        pinned = registry().model(name).sha256
        theirs = model.get("sha256") if isinstance(model.get("sha256"), dict) else {}
        if any(f in pinned and pinned[f] != v for f, v in theirs.items()):
            notes.append(("warning", f"{label} here has other weights than the file's (their sha256 differ)."))
        try:
            loaded = zoo_model(name)
        except AtlasError:
            loaded = None  # the page says why when it draws the model's box
    else:
        source = model.get("source")
        where = f" ({plain_label(str(source), 80)})" if source else ""
        notes.append(
            (
                "warning",
                f"The file's model {label}{where} is not in this zoo; the settings were put on the model chosen.",
            )
        )
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
    notes += _not_here(s)
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


def _guidance(key: str, s: SamplerSettings, loaded: Any) -> list[tuple[str, str]]:
    state, g, notes = st.session_state, s.guiding, []
    state[f"{key}-guidance"] = g.method
    if g.method == "cfg++":
        state[f"{key}-lambda"] = float(g.scale)
    elif g.scale <= GUIDANCE_MAX:
        state[f"{key}-cfg"] = float(g.scale)
    else:
        notes.append(("warning", f"The file's guidance scale {g.scale:g} is beyond this page's 0 to {GUIDANCE_MAX:g}."))
    if g.method == "rescale":
        state[f"{key}-rescale-phi"] = float(g.rescale)
    if g.method == "apg":
        state[f"{key}-apg-eta"], state[f"{key}-apg-beta"] = float(g.eta), float(g.momentum)
        state[f"{key}-apg-cap"] = float(g.threshold)
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


def _not_here(s: SamplerSettings) -> list[tuple[str, str]]:
    """A sentence for each setting of the file that this page has no control for (a folder's scheduler's)."""
    default = SamplerSettings()
    fields = {
        "clip_range": "clipping to another range than ±1",
        "thresholding": "dynamic thresholding",
        "steps_offset": "a steps_offset",
        "one_more": "DPM-Solver's n + 1 timesteps",
        "to_zero": "a grid that ends above σ = 0",
        "spread_classes": "classes spread over the images",
    }
    return [
        ("warning", f"The file uses {what}, which this page has no control for; it samples without it.")
        for field, what in fields.items()
        if getattr(s, field) != getattr(default, field)
    ]
