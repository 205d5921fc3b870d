"""Where work runs: the accelerator (CUDA, then Apple's MPS, then the CPU) and how many CPU threads torch uses."""

from __future__ import annotations

import os
import platform
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


THREAD_ROLES = ("server", "script", "ddp-rank", "small")


def threads_for(role: str, cores: int | None = None, ranks: int | None = None) -> int:
    """The one threads policy: torch's intra-op threads for each kind of work, on `cores` cores (default: the
    cores this process may run on). Seconds below: `python -m bench.threads` on this project's 2-core machine.

    - "server" (the Streamlit app; `configure_server_threads`): all cores but one, at least one. The browser, the
      web server and other sessions need a core, and a team of threads waits for its slowest member at every
      op: a 1-image UNet forward took 7 ms on 1 thread and 9-14 ms on 2 with one core busy.
    - "script" (`python -m zoo ...`, `python -m bench.NAME`): all cores; whoever starts a command gives it the
      machine. A UNet training step at batch 64 took 0.41 s on 1 thread and 0.29 s on 2.
    - "ddp-rank" (one of torchrun's processes): the cores divided among the `ranks` processes on this machine
      (default: torchrun's LOCAL_WORLD_SIZE), at least one each, so the ranks do not fight over cores.
    - "small" (a page's small-MLP training and point-set work, through `torch_threads(1)`): 1. Many small ops
      gain nothing from a second thread: a Toy-lab MLP step took 2 ms on 1 thread and 4 ms on 2.
    ATLAS_THREADS=N sets server, script and ddp-rank to N (for each process); "small" stays 1.

    OpenMP's workers sleep between ops: importing core sets OMP_WAIT_POLICY=PASSIVE (core/__init__.py) unless it
    is set. libgomp's default lets them spin, which is 2x faster for a 1-image UNet forward on an otherwise idle
    machine (6 ms against 13-15 ms on 2 threads) but made it 5-11x slower than on 1 thread beside one busy core
    (34-80 ms) and 10-15x slower on a machine shared with other jobs; passive, a 2-thread training step took
    0.53 s beside a busy core where spinning took 1.06 s. OMP_WAIT_POLICY=ACTIVE gives spinning back.

    Which thread calls torch does not matter: the main thread, a new thread per call batch (Streamlit runs each
    rerun in a new one) and one long-lived worker thread ran alike. With spinning workers, a second OpenMP team
    alive in the process (libgomp keeps one per thread that ran a 2-thread op, until that thread exits) halved
    2-thread speed (6 -> 13 ms): once the teams outnumber the cores, libgomp's workers sleep as passive ones do.
    """
    if role not in THREAD_ROLES:
        raise ValueError(f"unknown threads role {role!r}; one of {', '.join(THREAD_ROLES)}")
    if role == "small":
        return 1
    if os.environ.get("ATLAS_THREADS", "").isdigit():
        return max(1, int(os.environ["ATLAS_THREADS"]))
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if role == "server":
        return max(1, cores - 1)
    if role == "ddp-rank":
        if ranks is None:
            local = os.environ.get("LOCAL_WORLD_SIZE", "1")
            ranks = int(local) if local.isdigit() else 1
        return max(1, cores // max(1, ranks))
    return max(1, cores)


def use_threads(role: str) -> int:
    """Set the calling thread's torch threads to `threads_for(role)`, for an entry point that owns the thread
    (a script's main thread, a rerun's thread). Returns the count."""
    torch.set_num_threads(threads_for(role))
    return torch.get_num_threads()


def configure_server_threads() -> int:
    """The server's threads (`threads_for("server")`) in the calling thread; streamlit_app.py calls it at the top
    of every rerun, because Streamlit runs each rerun in a new thread and torch's setting is per thread."""
    return use_threads("server")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n intra-op threads in the calling thread (None: leave as is), then put back the
    thread's count. Under torch's OpenMP backend torch.set_num_threads sets the calling thread's count (and
    the count threads that first use torch later start with): a thread that has used torch keeps its own
    count whatever another thread sets, so sessions running side by side each set and restore their own."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
