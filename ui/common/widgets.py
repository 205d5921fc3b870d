"""Widgets that several pages share: the noise-schedule picker, a sampler option's control, a number control
whose range follows other settings, a typed step grid, and the one way a page shows an expected error."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st
import torch

from core.diffusion.grids import custom_sigmas
from core.diffusion.samplers import Option
from core.diffusion.schedules import SCHEDULE_KINDS, NoiseSchedule, make_schedule
from core.errors import AtlasError
from core.memory import MemoryLimitError
from core.training import budget

T = TypeVar("T")


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """fn(*args, **kwargs) as one job under the server's limit per job (core/training/budget.limited), or None
    after showing its AtlasError's sentence with st.error (bad input, a model that cannot load, no network) or,
    for a job stopped at the limit with what it finished kept, st.warning: the page goes on, and anything else is
    a bug with a traceback."""
    return _attempt(None, fn, args, kwargs)


def run_job(kind: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """`attempt` for the work a click starts (Generate, Measure, Train, Sweep): `kind` names it ("guidance sweep")
    and it must first fit in the server's memory (core/memory.py). While it waits for other visitors' jobs to
    end, a note where it was started says so (the page's Stop gives up); a warning says why it did not start."""
    return _attempt(kind, fn, args, kwargs)


class _WaitNote:
    """The note a job waiting for memory shows, made where the job was started when it first has to wait."""

    def __init__(self) -> None:
        self.slot: Any = None

    def show(self, sentence: str) -> None:
        if self.slot is None:
            self.slot = st.empty()
        self.slot.info(sentence, icon=":material/hourglass_top:")

    def clear(self) -> None:
        if self.slot is not None:
            self.slot.empty()


def _attempt(kind: str | None, fn: Callable[..., T], args: tuple, kwargs: dict) -> T | None:
    note = _WaitNote()
    try:
        with budget.limited(kind=kind, waiting=note.show):
            note.clear()
            return fn(*args, **kwargs)
    except budget.TimeLimitError as err:
        st.warning(str(err), icon=":material/timer_off:")
        return None
    except MemoryLimitError as err:
        note.clear()
        st.warning(str(err), icon=":material/memory:")
        return None
    except AtlasError as err:
        st.error(str(err))
        return None


def _shown(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def follow_range(
    container: Any, kind: str, label: str, low: T, high: T, default: T, *, key: str, because: str, **kwargs: Any
) -> T:
    """A slider or number box (`kind`) whose range [low, high] follows other settings (`because` names them: "T =
    10"). It keeps its last value, moved into the range with a sentence (below the control's row, where a column
    is too narrow for it) when the range no longer holds it; Streamlit alone would reset it to `default`, or
    fail where `default` lies outside."""
    last = st.session_state.get(key)
    value = min(max(default if last is None else last, low), high)
    chosen = getattr(container, kind)(label, low, high, value, key=key, **kwargs)
    if last is not None and value != last:
        st.info(f"{label} was {_shown(last)}, beyond what {because} allows: it is {_shown(value)} now.")
    return chosen


FLOW_SHIFTS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


@dataclass(frozen=True, kw_only=True)
class ScheduleChoice:
    kind: str
    steps: int  # T, the number of training steps
    beta_start: float | None  # None where the schedule has no beta range
    beta_end: float | None
    shift: float = 1.0  # the flow path's timestep shift

    def build(self) -> NoiseSchedule:
        return make_schedule(self.kind, self.steps, self.beta_start, self.beta_end, self.shift)


def schedule_picker(key: str, columns: int = 1, t_step: int = 10) -> ScheduleChoice:
    """Schedule, T and (where the schedule has one) its beta range or, for the flow path, its timestep shift,
    stacked or side by side in `columns`."""
    a, b, c = st.columns(3) if columns == 3 else (st.container(),) * 3
    names = list(SCHEDULE_KINDS)
    kind = a.selectbox("Noise schedule", names, format_func=lambda n: SCHEDULE_KINDS[n].title, key=f"{key}-kind")
    spec = SCHEDULE_KINDS[kind]
    steps = b.number_input("T (training steps)", 10, 4000, 1000, step=t_step, key=f"{key}-T")
    start = end = None
    shift = 1.0
    if spec.path == "flow":
        shift = c.select_slider(
            "Timestep shift s",
            FLOW_SHIFTS,
            1.0,
            key=f"{key}-shift",
            help="t -> s t / (1 + (s - 1) t): s > 1 moves the steps towards the noise, as SD3 "
            "does for large images (3.0 there).",
        )
    elif spec.beta_start is not None and spec.beta_end is not None:
        start, end = c.slider(
            "β range",
            1e-5,
            0.05,
            (float(spec.beta_start), float(spec.beta_end)),
            step=1e-5,
            format="%.5f",
            key=f"{key}-betas-{kind}",
        )
    else:
        c.caption(f"{spec.title} has no β range: ᾱ follows its formula, β clipped at 0.999.")
    return ScheduleChoice(kind=kind, steps=int(steps), beta_start=start, beta_end=end, shift=float(shift))


def option_widget(option: Option, key: str, container: Any = st, default: Any = None) -> float | str:
    """The control for one sampler option: a choice, or an int or float slider over its range, starting at
    `default` (None: the option's own)."""
    start = option.default if default is None else default
    if option.kind is str:
        index = option.choices.index(str(start))
        return container.selectbox(option.label, option.choices, index=index, help=option.help, key=key)
    cast = int if option.kind is int else float
    low, high, default = cast(option.low), cast(option.high), cast(start)
    return container.slider(option.label, low, high, default, help=option.help, key=key)


def typed_grid(container: Any, key: str, sigma_max: float | None = None) -> torch.Tensor | None:
    """A step grid typed as noise levels, largest first (core/diffusion/grids.custom_sigmas), or None while the box
    is empty. Bad text raises BadInputError with the reason (run it under `attempt`)."""
    text = container.text_input(
        "Typed grid (σ values, largest first)",
        key=key,
        placeholder="e.g. 80, 14.6, 3.9, 1.4, 0.5, 0.03",
        help="Noise levels, separated by commas or spaces; a final 0 is added. Paste a grid from a paper or "
        "another tool to see and run it beside the built-in ones.",
    )
    return custom_sigmas(text, sigma_max) if text.strip() else None


def guidance_settings(key: str, methods: Collection[str], container: Any = st) -> dict[str, float]:
    """The settings of the guidance `methods` among them (core/diffusion/guidance.Guidance's fields): rescale's
    phi; APG's eta, momentum beta and norm cap r. Only the chosen methods' controls are shown."""
    out: dict[str, float] = {}
    if "rescale" in methods:
        out["rescale"] = container.slider(
            "Rescale φ", 0.0, 1.0, 0.7, 0.05, key=f"{key}-rescale-phi", help="0: plain CFG; 1: fully rescaled."
        )
    if "apg" in methods:
        out["eta"] = container.slider(
            "APG η",
            0.0,
            1.0,
            0.0,
            0.05,
            key=f"{key}-apg-eta",
            help="The weight of the update's part parallel to D_c (1: CFG).",
        )
        out["momentum"] = container.slider(
            "APG momentum β",
            -0.9,
            0.9,
            -0.5,
            0.05,
            key=f"{key}-apg-beta",
            help="0: none; the paper uses negative values.",
        )
        out["threshold"] = container.number_input(
            "APG norm cap r (0: none)", 0.0, 1000.0, 0.0, key=f"{key}-apg-cap", help="The update's norm is capped at r."
        )
    return {k: float(v) for k, v in out.items()}
