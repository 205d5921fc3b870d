"""Load settings from a file onto the Side by side tab: the grid (PNG) or table (CSV) it exported, or their JSON,
carries one record per checkpoint (core/labs/provenance.py). The zoo checkpoints among them are chosen again, and
the sampler, steps, seed, images and class go back into the tab's controls (views.controls), so that Sample draws
the same images; a checkpoint that is not a zoo model here, or a setting the tab does not set, gets a sentence.
The uploader and its callback are ui/common/from_file.py's."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core.diffusion.samplers import SAMPLERS
from core.errors import AtlasError, BadInputError
from core.labs import provenance
from core.labs.compare import settings_for
from core.labs.samplers import SamplerSettings
from core.text import plain_label
from ui.common import from_file
from ui.common.cache import zoo_model
from ui.common.from_file import Note, put_number
from ui.common.models import pixel_models
from ui.compare_checkpoints.sources import MAX_CHECKPOINTS
from ui.compare_checkpoints.views import MAX_SEED, OWN, SIDE_IMAGES

KEY = "ck"

Run = tuple[dict[str, Any], SamplerSettings]  # a record and the settings it holds


def load_settings_box() -> None:
    """The tab's "Load settings from a file" (in the tab, above its controls)."""
    from_file.load_settings_box(
        KEY,
        restore,
        kinds=("png", "csv", "json"),
        what="The checkpoints and sampling settings the grid and the table carry (one record per checkpoint)",
        where=st,
    )


def restore(key: str, records: list[dict[str, Any]], name: str) -> list[Note]:
    """The file's checkpoints and settings put into the tab's controls (`key`-...); the sentences of what was
    not restored."""
    if (page := from_file.study_page(records[0])) is not None:
        raise BadInputError(f"{name} holds a study of another page ({page}), not checkpoints sampled: load it there.")
    runs = [(rec, provenance.settings_from(rec)) for rec in records]
    state = st.session_state
    chosen, notes = _checkpoints(runs)
    state[f"{key}-models"] = chosen
    notes += _clear_own(key)
    first = runs[0][1]
    for field, what in (("steps", "steps"), ("seed", "seed"), ("batch", "number of images")):
        if len({getattr(s, field) for _, s in runs}) > 1:
            notes.append(("warning", f"The file's runs differ in their {what}; the tab uses the first run's for all."))
    notes += put_number(f"{key}-steps", int(first.steps), 1, 1000, "steps")
    notes += put_number(f"{key}-seed", int(first.seed), 0, MAX_SEED, "seed")
    if first.batch <= SIDE_IMAGES:
        state[f"{key}-batch"] = int(first.batch)
    else:
        state[f"{key}-batch"] = SIDE_IMAGES
        notes.append(("warning", f"The file drew {first.batch} images; this tab draws at most {SIDE_IMAGES}."))
    labels = sorted({s.label for _, s in runs if s.label is not None})
    if len(labels) > 1:
        notes.append(("warning", f"The file's runs ask for different classes; the tab asks for class {labels[0]}."))
    if labels and labels[0] > 9:
        notes.append(("warning", f"The file asks for class {labels[0]}; this tab offers classes 0 to 9."))
    else:
        state[f"{key}-class"] = labels[0] if labels else "none"
    loaded = {n: m for n in chosen if (m := _loaded(n)) is not None}
    sampler, differ = _sampler(runs, loaded, state.get(f"{key}-class", "none"))
    state[f"{key}-sampler"] = sampler
    notes += differ
    described = "; ".join(provenance.describe(rec) for rec, _ in runs[:MAX_CHECKPOINTS])
    return [("success", f"Restored from the file: {described}. Press **Sample**."), *notes]


def _checkpoints(runs: list[Run]) -> tuple[list[str], list[Note]]:
    """The file's checkpoints that are zoo models here (at most MAX_CHECKPOINTS, in the file's order), and a
    sentence for each that is not."""
    zoo, chosen, notes = pixel_models(), [], []
    for rec, _ in runs:
        model = from_file.part(rec, "model")
        name = model.get("name")
        if isinstance(name, str) and name in zoo:
            chosen += [name] if name not in chosen else []
            continue
        shown = plain_label(str(model.get("title") or name), 60)
        source = model.get("source")
        where = f" ({plain_label(str(source), 80)})" if source else ""
        notes.append(
            (
                "warning",
                f"The file's checkpoint {shown}{where} is not a zoo model here; name it under **Your own** to "
                "compare it again.",
            )
        )
    if len(chosen) > MAX_CHECKPOINTS:
        notes.append(("warning", f"The tab compares at most {MAX_CHECKPOINTS}: the file's first ones were chosen."))
    return chosen[:MAX_CHECKPOINTS], notes


def _clear_own(key: str) -> list[Note]:
    """The checkpoints named under "Your own" cleared, so that the tab compares the file's (a sentence if any
    were)."""
    state = st.session_state
    typed = any(str(state.get(f"{key}-{k}") or "").strip() for k in ("repo", "local"))
    if not typed and state.get(f"{key}-run", "none") == "none":
        return []
    state[f"{key}-repo"], state[f"{key}-local"], state[f"{key}-run"] = "", "", "none"
    return [("info", "The checkpoints named under **Your own** were cleared: the tab compares the file's.")]


def _loaded(name: str) -> Any:
    try:
        return zoo_model(name)
    except AtlasError:
        return None  # the tab says why when it draws the checkpoint


def _sampler(runs: list[Run], loaded: dict[str, Any], choice: Any) -> tuple[str, list[Note]]:
    """The tab's sampler choice under which the checkpoints here are sampled as the file's were (each folder's
    own, else DPM-Solver++(2M); or a sampler named), and a sentence per checkpoint whose sampling still differs
    (a setting the tab does not set: a grid, guidance, options)."""
    label = None if choice == "none" else int(choice)
    names = [from_file.part(rec, "model").get("name") for rec, _ in runs]
    here = [(s, loaded[n]) for n, (_, s) in zip(names, runs, strict=True) if isinstance(n, str) and n in loaded]
    named = list(dict.fromkeys(s.sampler for _, s in runs))
    candidates = [OWN, *named] if here else [*named, OWN]

    def differences(candidate: str) -> dict[str, list[str]]:
        out = {}
        for s, model in here:
            ours = settings_for(model, None if candidate == OWN else candidate, s.steps, s.seed, s.batch, label)
            theirs, mine = _plain(s), _plain(ours)
            if differ := [k for k in theirs if theirs[k] != mine.get(k)]:
                out[model.title] = differ
        return out

    found = [(c, differences(c)) for c in candidates]
    sampler, differ = min(found, key=lambda cd: sum(map(len, cd[1].values())))  # the first of the closest
    notes = [
        (
            "warning",
            f"The file sampled {plain_label(title, 60)} with settings this tab does not set ({', '.join(fields)}); "
            "its images here may differ from the file's.",
        )
        for title, fields in differ.items()
    ]
    return sampler, notes


def _plain(s: SamplerSettings) -> dict[str, Any]:
    """The settings as a record holds them (JSON values), with the sampler's options at their defaults where
    unset (a sampler runs with those)."""
    defaults = {o.name: o.default for o in SAMPLERS[s.sampler].options}
    part = provenance.settings_part(s)
    part["options"] = defaults | part["options"]
    return json.loads(provenance.text(part))
