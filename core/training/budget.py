"""The server's limit on one job's time (ATLAS_MAX_JOB_SECONDS): a job is refused before it starts when its
estimate is over it (`check`), and stopped at it while it runs (`Deadline`); and how long a training job in the
app would take.

Every model trained on the pages (the toy lab's and the latent page's MLP denoisers, the MLP VAE) is a stack of
dense layers trained on one thread, so a step costs about a + b * batch * parameters seconds. a and b are
measured once per process on this machine, from the quickest of a few steps of a small and a mid-sized job
(about 0.15 s, with the same trainer; the quickest, so that a busy moment does not inflate them): the estimate
follows the hardware and lands within about 25% of the training loop (bench/budget.py). A job whose estimate
is over the budget (ATLAS_MAX_JOB_SECONDS, default 300 s: a shared 2-core server gives each user about a core)
is refused with a sentence before it starts. An estimate can be wrong (the machine got busy), so a job also
runs under a `Deadline`, armed for the code it encloses by `limited()`: the loops check it between their steps
(`check_deadline`) and it raises `TimeLimitError`, whose sentence the pages show, keeping what was finished.
A job a click starts (`limited(kind=...)`) must also fit in the server's memory (core/memory.py): near the limit
it waits for other visitors' jobs to end (its time starts when it does start) or is refused with a sentence, and
its rise in memory is watched at the same checkpoints.
One job per session follows from Streamlit itself: a session runs one script at a time, and any click stops
the running one (the trainers keep what they finished).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

from core import memory
from core.device import torch_threads
from core.errors import AtlasError, BadInputError
from core.limits import max_job_seconds

_SMALL, _LARGE = (32, 64), (128, 1024)  # (MLP width, batch) of the two timed jobs


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _seconds_per_step(width: int, batch: int) -> tuple[float, int]:
    """Measured seconds per training step of a 2-block MLP denoiser, and its parameter count."""
    from core.diffusion.schedules import make_schedule
    from core.models.mlp import MLPConfig, build_mlp
    from core.training.diffusion import DiffusionTrainer, TrainConfig, tensor_batches

    model = build_mlp(MLPConfig(dim=2, width=width, depth=2, num_steps=100))
    data = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    trainer = DiffusionTrainer(model, make_schedule("linear", 100), TrainConfig(batch_size=batch), tensor_batches(data))
    times = []
    with torch_threads(1):
        trainer.train(2)  # warm-up
        for _ in range(6):  # the quickest step: the machine's speed, not whatever else ran at that moment
            tic = time.perf_counter()
            trainer.train(1)
            times.append(time.perf_counter() - tic)
    return min(times), count_parameters(model)


_measuring = threading.Lock()


def step_cost() -> tuple[float, float]:
    """(a, b) of seconds per step = a + b * batch * parameters, measured once per process (sessions that ask at
    the same moment wait for the one measurement: several at once would read the machine slow)."""
    with _measuring:
        return _measured_step_cost()


@functools.cache
def _measured_step_cost() -> tuple[float, float]:
    small_s, small_p = _seconds_per_step(*_SMALL)
    large_s, large_p = _seconds_per_step(*_LARGE)
    small_work, large_work = _SMALL[1] * small_p, _LARGE[1] * large_p
    b = max((large_s - small_s) / (large_work - small_work), 1e-15)
    return max(small_s - b * small_work, 0.0), b


def estimate_seconds(steps: int, batch: int, parameters: int) -> float:
    a, b = step_cost()
    return steps * (a + b * batch * parameters)


def check(seconds: float, what: str, lower: str = "fewer steps, a smaller batch or a smaller network") -> float:
    """`seconds` (a job's estimate) back, or BadInputError saying what to lower when it is over the budget."""
    limit = max_job_seconds()
    if seconds > limit:
        raise BadInputError(
            f"That {what} would take about {describe(seconds)} on this server, over its limit of {describe(limit)} "
            f"per job (the server is shared): use {lower}."
        )
    return seconds


def describe(seconds: float) -> str:
    """'12 s', '3.5 min', '20 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.0f} h"


class TimeLimitError(AtlasError):
    """A job stopped at the server's limit per job, while it ran (what it finished is kept by its caller)."""


class Deadline:
    """The end of a job's time: `limit` seconds (ATLAS_MAX_JOB_SECONDS by default) from its creation."""

    def __init__(self, limit: float | None = None) -> None:
        self.limit = max_job_seconds() if limit is None else limit
        self.started = time.perf_counter()

    def passed(self) -> bool:
        return time.perf_counter() - self.started > self.limit

    def check(self) -> None:
        """TimeLimitError once the job has run past its limit."""
        if self.passed():
            raise TimeLimitError(
                f"This job reached the server's limit of {describe(self.limit)} per job (the server is shared) and "
                "was stopped; what it finished is kept. Ask for less work to see all of it."
            )


_armed: ContextVar[Deadline | None] = ContextVar("atlas_job_deadline", default=None)
_watched: ContextVar[memory.Watch | None] = ContextVar("atlas_job_memory", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the job this code runs in (`limited`), if any."""
    return _armed.get()


@contextmanager
def limited(
    deadline: Deadline | None = None, kind: str | None = None, waiting: Callable[[str], None] | None = None
) -> Iterator[Deadline]:
    """Run the enclosed code as (part of) one job under `deadline`; without one, under the job's that encloses
    this code, else a new one from when it starts. Armed per thread (each Streamlit session runs in its own).

    `kind` names a job a click started ("sampling", "guidance sweep"): unless it runs inside another job, it is
    first admitted by the server's memory (core/memory.admit: with `waiting`, it may wait its turn, and `waiting`
    is shown why; else, or when waiting cannot help, MemoryLimitError) and its rise in memory is watched until it
    ends, for the next job of its kind."""
    outer = _armed.get()
    watch = memory.admit(kind, waiting=waiting) if kind is not None and outer is None else None
    chosen = deadline or outer or Deadline()
    token, watching = _armed.set(chosen), _watched.set(watch or _watched.get())
    try:
        yield chosen
    finally:
        _armed.reset(token)
        _watched.reset(watching)
        if watch is not None:
            watch.close()


def check_deadline() -> None:
    """TimeLimitError when the job this code runs in is past its limit; nothing outside a job. A watched job's
    memory is read here too (at most every `memory.SAMPLE_EVERY_S`)."""
    watch = _watched.get()
    if watch is not None:
        watch.sample()
    deadline = _armed.get()
    if deadline is not None:
        deadline.check()
