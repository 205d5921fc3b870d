"""The toy lab's settings widgets: model and training, sampler, drift field. Each returns plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from core.diffusion.denoisers import PREDICTION_TYPES
from core.diffusion.samplers import SAMPLERS
from core.diffusion.schedules import SPACINGS
from core.labs.toy import MAX_SAMPLE_STEPS, MAX_TRAIN_STEPS, ToySettings
from core.limits import max_points
from core.models.mlp import TIME_EMBEDDINGS
from ui.common.widgets import follow_range, option_widget, schedule_picker

TARGETS = {
    "epsilon": "ε (noise)",
    "sample": "x₀ (data)",
    "v_prediction": "v (velocity)",
    "flow_prediction": "flow matching (ε − x₀)",
}
EMA_CHOICES = (None, 0.9, 0.99, 0.995, 0.999)


def train_settings() -> tuple[ToySettings, int]:
    """The model, schedule and optimiser settings, and how many steps to train for."""
    a, b, c, d = st.columns(4)
    steps = a.number_input(
        "Training steps",
        10,
        MAX_TRAIN_STEPS,
        1000,
        step=100,
        key="toy-steps",
        help="Continue training adds this many steps to the current model.",
    )
    lr = b.select_slider(
        "Learning rate",
        [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2],
        1e-2,
        key="toy-lr",
        help="Peak rate of AdamW; it decays along a cosine over each Train / Continue.",
    )
    batch = c.select_slider("Batch size", [64, 128, 256, 512, 1024, 2048, 4096], 512, key="toy-batch")
    seed = d.number_input("Training seed", 0, 2**31 - 1, 0, key="toy-train-seed", help="Weights, batches, noise.")
    with st.expander("Model and noise schedule", expanded=False):
        schedule = schedule_picker("toy", columns=3, t_step=50)
        a, b, c, d = st.columns(4)
        target = a.radio(
            "Objective",
            list(PREDICTION_TYPES),
            2,
            format_func=TARGETS.get,
            key="toy-target",
            help="What the network outputs, all converted to the same x₀ estimate. Flow matching "
            "learns the velocity of the straight path x_t = (1 − t) x₀ + t ε whatever the schedule, "
            "which then only places the sampling steps (the flow schedule evenly in t).",
        )
        width = b.select_slider("MLP width", [16, 32, 64, 128, 256, 512], 64, key="toy-width")
        depth = b.slider("Residual blocks", 1, 8, 2, key="toy-depth")
        emb = c.selectbox(
            "Time embedding",
            list(TIME_EMBEDDINGS),
            format_func=str.capitalize,
            key="toy-emb",
            help=" · ".join(f"{k}: {v}" for k, v in TIME_EMBEDDINGS.items()),
        )
        ema = d.selectbox(
            "EMA of weights",
            EMA_CHOICES,
            2,
            format_func=lambda e: "off" if e is None else str(e),
            key="toy-ema",
            help="Sample with an exponential moving average of the weights.",
        )
    settings = ToySettings(
        schedule=schedule.kind,
        T=schedule.steps,
        beta_start=schedule.beta_start,
        beta_end=schedule.beta_end,
        prediction_type=target,
        width=int(width),
        depth=int(depth),
        time_embedding=emb,
        lr=float(lr),
        batch_size=int(batch),
        ema_decay=ema,
        seed=int(seed),
    )
    return settings, int(steps)


class TrainingButtons:
    """Train, Continue training and Stop in a row, with a slot for the model's summary (`info`).

    Continue is enabled once the session has a model. Its slot is drawn before the training runs, so after the
    session's first Train the page calls `ready_now()` to enable it in the same run (and not only after
    another click somewhere on the page). Train is disabled while its settings are over the server's limit
    per job (`allowed`), so a refused job never replaces the model there is."""

    def __init__(self, ready: bool, allowed: bool = True) -> None:
        b1, b2, b3, self.info = st.columns([1, 1.3, 1, 3])
        self.train = b1.button(
            "Train", type="primary", key="toy-train", disabled=not allowed, help="A new model from scratch."
        )
        self._slot, self._ready = b2.empty(), ready
        self.resume = self._continue(ready)
        b3.button("Stop", key="toy-stop", help="Keeps the model trained so far.")

    def _continue(self, ready: bool) -> bool:
        key = "toy-continue" if ready else "toy-continue-waiting"  # one widget per key and run
        return self._slot.button("Continue training", key=key, disabled=not ready, help="More steps, same optimizer.")

    def ready_now(self) -> None:
        if not self._ready:
            self._ready = True
            self._continue(True)


@dataclass(frozen=True, kw_only=True)
class SamplerChoice:
    name: str
    steps: int
    spacing: str
    n: int
    seed: int
    path_points: int
    show_x0: bool
    clip: bool
    options: dict[str, Any]


def sampler_settings(T: int) -> SamplerChoice:
    a, b, c, d = st.columns(4)
    names = list(SAMPLERS)
    name = a.selectbox(
        "Sampler", names, names.index("euler"), format_func=lambda k: SAMPLERS[k].title, key="toy-sampler"
    )
    top = min(T, MAX_SAMPLE_STEPS, 200)
    steps = follow_range(
        b, "slider", "Steps", 1, top, min(50, T), key="toy-sample-steps", because=f"the model's T = {T:,}"
    )
    spacing = c.selectbox(
        "Step spacing",
        SPACINGS,
        SPACINGS.index("trailing"),
        key="toy-spacing",
        help="Where the steps sit in time: timestep spacings (leading / trailing / linspace), even in the "
        "model's time t, even in log-SNR, or Karras et al.'s ρ = 7 noise levels.",
    )
    seed = d.number_input("Sampling seed", 0, 2**31 - 1, 0, key="toy-sample-seed")
    spec = SAMPLERS[name]
    a, b, c, d = st.columns(4)
    n = a.number_input("Points to sample", 100, max_points(), 10_000, step=1000, key="toy-sample-n")
    path = b.slider("Points in the animation", 100, 5000, 1000, 100, key="toy-path-n")
    show_x0 = c.toggle("Show predicted x₀", False, key="toy-show-x0", help="The model's guess of the end point.")
    clip = c.toggle(
        "Clip x₀ to the data's box",
        False,
        key="toy-clip",
        help="Clamp every x₀ estimate to the data's range (DDPM's clip_sample).",
    )
    options = {o.name: option_widget(o, f"toy-opt-{name}-{o.name}", d) for o in spec.options}
    return SamplerChoice(
        name=name,
        steps=int(steps),
        spacing=spacing,
        n=int(n),
        seed=int(seed),
        path_points=int(path),
        show_x0=show_x0,
        clip=clip,
        options=options,
    )


@dataclass(frozen=True, kw_only=True)
class FieldChoice:
    kind: str  # velocity | score
    times: torch.Tensor  # decreasing u in (0, 1]
    mesh: int  # points along the longest side


def field_settings(dim: int, compact: bool = False) -> FieldChoice:
    """Which field, at which times, on how fine a grid (in one column when `compact`)."""
    a, b, c = (st.container(),) * 3 if compact else st.columns(3)
    kind = a.radio(
        "Field",
        ["velocity", "score"],
        horizontal=True,
        key="toy-field-kind",
        format_func={"velocity": "Probability-flow velocity", "score": "Score"}.get,
    )
    lo, hi = b.slider("Time range u = t / (T - 1)", 0.0, 1.0, (0.02, 1.0), 0.01, key="toy-field-range")
    frames = b.slider("Frames", 2, 20, 10, key="toy-field-frames")
    side = c.slider("Grid points per side", 4, 14 if dim == 3 else 40, 8 if dim == 3 else 24, key=f"toy-grid-{dim}")
    lo = max(lo, 0.005)
    hi = max(hi, lo)
    return FieldChoice(kind=kind, times=torch.linspace(hi, lo, frames, dtype=torch.float64), mesh=int(side))
