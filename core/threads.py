"""How many CPU threads torch uses for a piece of work, safely across overlapping callers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with n intra-op threads (None: leave as is). A small MLP spends its time in many small ops,
    where one thread is as fast as two and cannot be stalled by a busy second core (OpenMP threads wait
    for each other at every op; on a loaded 2-core machine that made training 20x slower). The setting
    is process-wide, so the first of overlapping users (sessions) saves it and the last restores it."""
    global _threads_users, _threads_before
    if n is None:
        yield
        return
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
        _threads_users += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)
