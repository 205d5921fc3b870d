"""Imports that take seconds the first time in a process, done once in the background when the server starts.

torch's optimizers import torch._dynamo when the first one is built (about 1.3 s here), scipy.signal (the
smoothing of loss curves) about 1.3 s, diffusers (every UNet) a few seconds: without this the first person
to press Train or open a chart pays for them. Python's import lock makes a page that needs a module while it
is still loading wait for this import instead of starting a second one.

Together they hold about 150 MB from the first visit on, whichever pages are used. So where the server's memory
limit is under `MIN_MEMORY_BYTES` (Streamlit Community Cloud's 1 GB: core/memory.limit_bytes) there is no warm-up
unless ATLAS_WARMUP=1 asks for it, and each is imported where it is first used; ATLAS_WARMUP=0 turns it off
everywhere.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading

from core import memory
from core.limits import warmup_imports

MODULES = ("torch._dynamo", "scipy.signal", "scipy.stats", "diffusers", "plotly.subplots")
MIN_MEMORY_BYTES = 2 * 2**30
_started, _done = threading.Event(), threading.Event()


def wanted() -> bool:
    """ATLAS_WARMUP when it is set; else whether the server's memory limit leaves room for the warm-up."""
    if os.environ.get("ATLAS_WARMUP", "").strip():
        return bool(warmup_imports())
    return memory.limit_bytes() >= MIN_MEMORY_BYTES


def wait_for_warmup(timeout: float = 15.0) -> None:
    """Block until the warm-up imports are done (at most `timeout` s): a measurement of this machine's speed
    taken while they hold the interpreter would read it slow (the training budget's, core/training/budget.py)."""
    if _started.is_set():
        _done.wait(timeout)


def start_warmup() -> None:
    """Import MODULES in a daemon thread, once per process (later calls do nothing), when `wanted()`."""
    if _started.is_set() or not wanted():
        return
    _started.set()

    def run() -> None:
        for name in MODULES:
            with contextlib.suppress(Exception):  # a warm-up never breaks the app; the real import will say why
                importlib.import_module(name)
        _done.set()

    threading.Thread(target=run, name="atlas-warmup", daemon=True).start()
