"""Where work runs: the accelerator (CUDA, then Apple's MPS, then the CPU) and how many CPU threads torch uses."""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from core.errors import BadInputError


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device, or `prefer` ("cpu", "cuda", "mps") when it is available.

    The environment variable ATLAS_DEVICE overrides the choice (e.g. ATLAS_DEVICE=cpu on a shared GPU box).
    """
    wanted = prefer or os.environ.get("ATLAS_DEVICE")
    if wanted == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available() and wanted in (None, "cuda"):
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and wanted in (None, "mps"):
        return torch.device("mps")
    return torch.device("cpu")


def check_device(name: str) -> torch.device:
    """A device someone named (a command line's --device): parsed and present here, else BadInputError."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise BadInputError(f"Unknown device {name!r}; use cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise BadInputError(f"Device {name!r} is not available here (this PyTorch sees no such CUDA GPU); use cpu.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInputError("Device 'mps' is not available here (no Apple GPU); use cpu.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise BadInputError(f"Device {name!r} is not one the atlas trains on; use cpu, cuda, cuda:N or mps.")
    return device


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # cpu | cuda | mps
    name: str  # a human name: the GPU model, or the CPU architecture
    torch_version: str
    threads: int

    @property
    def summary(self) -> str:
        return f"{self.kind.upper()} ({self.name}), torch {self.torch_version}"


def describe_device(device: torch.device | None = None) -> DeviceInfo:
    device = device or pick_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU"
    else:
        name = f"{platform.machine() or 'unknown'} CPU, {os.cpu_count() or 1} cores"
    return DeviceInfo(kind=device.type, name=name, torch_version=torch.__version__, threads=torch.get_num_threads())


def server_threads(cores: int | None = None) -> int:
    """Intra-op threads for the app's server: all cores but one (at least one), or ATLAS_THREADS.

    The browser, the web server and other sessions need a core. OpenMP threads wait for each other at every
    op, so when one of torch's threads shares a core with a busy browser each op waits for the slowest: on
    2 cores with the browser on the same machine, 2 threads sampled 16 MNIST digits in 13 s, 1 thread in 0.6 s."""
    if os.environ.get("ATLAS_THREADS", "").isdigit():
        return max(1, int(os.environ["ATLAS_THREADS"]))
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


_configured = False


def configure_server_threads() -> int:
    """Set torch's intra-op threads to `server_threads()` once per process (later calls change nothing)."""
    global _configured
    if not _configured:
        torch.set_num_threads(server_threads())
        _configured = True
    return torch.get_num_threads()


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
