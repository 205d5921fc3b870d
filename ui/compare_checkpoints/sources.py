"""Where the Compare checkpoints page's models come from: zoo entries, a typed Hub repo id, local folders or
.safetensors files (under the allowed roots), and the checkpoints a run saved; each loaded, or its sentence.
Loaded models are keyed by their own name (a zoo name, a repo id, `local:` and the weights file), so two paths
that look alike, or the EMA and raw weights of one checkpoint, never share a result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.errors import AtlasError
from core.runs.record import Run, evenly
from core.text import plain_label
from ui.common.cache import hub_model, local_model, zoo_model
from ui.common.models import pixel_models
from ui.common.runs import runs_with_unet_checkpoints
from zoo.loaders import LoadedModel

MAX_CHECKPOINTS = 4
MAX_LOCAL_LINES = 4
MAX_STEPS = 8


def step_label(step: int) -> str:
    return f"step {step:,}"


def pick_run_steps(runs: dict[str, Run], key: str, default_count: int = 0) -> tuple[Run | None, list[int]]:
    """A run (or none) and some of its checkpoints' steps; `default_count` of them spread over training."""
    if st.session_state.get(f"{key}-run", "none") not in ("none", *runs):  # e.g. a run that has gone since
        del st.session_state[f"{key}-run"]
    choice = st.selectbox("Run", ["none", *runs], key=f"{key}-run", format_func=lambda r: r if r != "none" else "—")
    if choice == "none":
        return None, []
    run = runs[choice]
    steps = [s for s, _ in run.checkpoints]
    picked = st.multiselect(
        "Checkpoints (training steps)",
        steps,
        evenly(steps, default_count),
        key=f"{key}-steps-{choice}",
        format_func=step_label,
        max_selections=MAX_STEPS,
        help="Which of the run's saved checkpoints to compare, by the training step it was saved at.",
    )
    return run, sorted(picked)


def pick() -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """The side-by-side tab's checkpoints (at most four, in the order given), loaded and keyed by name, and a
    sentence for each that could not be (keyed by what was typed or picked)."""
    options = pixel_models()
    chosen = st.multiselect(
        "Zoo checkpoints", list(options), list(options)[:2], format_func=options.get, max_selections=4, key="ck-models"
    )
    wanted: list[tuple[str, Callable[[], LoadedModel]]] = [(n, lambda n=n: zoo_model(n)) for n in chosen]
    with st.expander("Your own: a Hub repo, local folders, a run's checkpoints", expanded=False):
        left, right = st.columns(2)
        typed = left.text_input("Hub repo id", key="ck-repo", placeholder="google/ddpm-cifar10-32", max_chars=200)
        if typed.strip():
            wanted.append((typed.strip(), lambda: hub_model(typed)))
        run, steps = pick_run_steps(runs_with_unet_checkpoints(), "ck")
        folders = dict(run.checkpoints) if run is not None else {}
        for step in steps:
            wanted.append((f"{run.name} @ {step_label(step)}", lambda f=folders[step]: local_model(str(f))))
        local = right.text_area(
            "Local folders or .safetensors files, one per line",
            key="ck-local",
            max_chars=4000,
            height=100,
            placeholder="runs/my-run/checkpoint-500\nruns/my-pipeline",
            help="A diffusers UNet or pipeline folder, a training checkpoint-N/ folder (unet/, unet_ema/), or a "
            ".safetensors file with its config.json beside it, under the runs folder or ATLAS_ALLOWED_ROOTS.",
        )
        ema = right.toggle("EMA weights where a checkpoint has both", True, key="ck-ema")
        mnist = right.toggle(
            "Score 1×28×28 models as MNIST digits",
            True,
            key="ck-mnist",
            help="FD-LeNet and class shares by the bundled classifier, for local models that do "
            "not say what they were trained on.",
        )
        lines = [line.strip() for line in local.splitlines() if line.strip()]
        if len(lines) > MAX_LOCAL_LINES:
            st.warning(f"Only the first {MAX_LOCAL_LINES} paths are read.")
        for line in lines[:MAX_LOCAL_LINES]:
            wanted.append((plain_label(line, 80), lambda line=line: local_model(line, ema, mnist)))
    if len(wanted) > MAX_CHECKPOINTS:
        st.warning(f"Compare at most {MAX_CHECKPOINTS} at once: the first {MAX_CHECKPOINTS} are used.")
    loaded, failures = {}, {}
    for label, load in wanted[:MAX_CHECKPOINTS]:
        try:
            model = load()
        except AtlasError as e:
            failures[label] = str(e)
        else:
            loaded[model.name] = model
    return loaded, failures


def checkpoint_key(folder: Path) -> str:
    """The name a run's checkpoint folder is sampled and measured under on the Over training tab."""
    return f"checkpoint:{folder}"
