"""The server's memory: what it uses, what it may use, and whether a new job fits in what is left.

Streamlit Community Cloud gives an app about 1 GB and kills the whole app when it goes over, losing every
visitor's session. So a job started on a page is refused with a sentence when the memory in use plus what that
kind of job has lately taken would pass `SAFE_SHARE` of the limit: the app degrades instead of dying.

- The limit: ATLAS_MEMORY_MB when set, else the memory cgroup's limit (a container's: cgroup v2 `memory.max`,
  v1 `memory.limit_in_bytes`), else the machine's memory.
- In use: inside a limited cgroup, its working set (usage less the inactive file cache, which the kernel drops
  before it kills anything: what container tools report); else this process's resident memory. (Not the larger
  of the two: resident memory counts shared libraries whose pages another cgroup may have paid for.)
- What a job takes is learned, like its speed (core/cost.py): `Watch` samples the memory in use at the job's
  checkpoints (`check_deadline`) and records how far it rose; a kind of job is expected to take the largest rise
  of its last few runs (at least `FLOOR_BYTES`; `FIRST_GUESS_BYTES` before any has been watched). Jobs that run
  beside it inflate the figure, on the safe side.
- Jobs that start together have not allocated yet when the next is admitted: each running job holds what it is
  expected to take until it ends, and a new one must fit beside those too (three guidance sweeps and then three
  toy trainings, clicked at once by three visitors, had a 1 GB box killed before they did).
- After a job, freed heap is handed back to the system (`give_back`: glibc's malloc_trim), so a server that was
  busy does not hold its peak for the rest of its life.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
import time
from collections import deque
from pathlib import Path

from core.errors import AtlasError
from core.limits import memory_limit_mb

SAFE_SHARE = 0.9  # of the limit: above it the kernel may kill the app at the next allocation burst
FLOOR_BYTES = 32 * 2**20  # the least a job is expected to take
FIRST_GUESS_BYTES = 128 * 2**20  # what a job is expected to take before any of its kind has been watched
KEPT_RUNS = 5  # rises kept per kind of job
SAMPLE_EVERY_S = 0.25  # a job's memory is read at most this often
MB = 2**20


class MemoryLimitError(AtlasError):
    """A job refused because the server's memory is near its limit (nothing was started)."""


@functools.cache
def _cgroup_files() -> tuple[Path, str, str] | None:
    """(this process's memory cgroup folder, its limit file, its usage file), for cgroup v2 or v1, or None. A
    process stays in the cgroup it started in (a container's), so this is read once."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():  # v2, one hierarchy
            folder = Path("/sys/fs/cgroup") / path.lstrip("/")
            return (folder if folder.is_dir() else Path("/sys/fs/cgroup")), "memory.max", "memory.current"
        if "memory" in controllers.split(","):  # v1: the memory controller's own hierarchy
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            root = folder if folder.is_dir() else Path("/sys/fs/cgroup/memory")
            return root, "memory.limit_in_bytes", "memory.usage_in_bytes"
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def machine_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cgroup_limit_bytes() -> int | None:
    """The memory cgroup's limit when it is below the machine's memory (a container's), else None."""
    files = _cgroup_files()
    if files is None:
        return None
    limit = _read_int(files[0] / files[1])
    return limit if limit is not None and limit < machine_bytes() else None


def limit_bytes() -> int:
    """The memory this server may use: ATLAS_MEMORY_MB, else its cgroup's limit, else the machine's memory."""
    chosen = memory_limit_mb()
    if chosen > 0:
        return int(chosen * MB)
    return cgroup_limit_bytes() or machine_bytes()


def status_kib(field: str, pid: int | str = "self") -> int:
    """A memory line of a process's /proc status (VmRSS, VmHWM, ...) in KiB; 0 when it cannot be read (gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def resident_bytes() -> int:
    """This process's resident memory (VmRSS)."""
    return status_kib("VmRSS") * 1024


def working_set(folder: Path, usage_file: str) -> int | None:
    """A memory cgroup's usage less its inactive file cache (what the kernel cannot drop before it kills), or
    None when its files cannot be read. `usage_file`: memory.current (v2) or memory.usage_in_bytes (v1)."""
    usage = _read_int(folder / usage_file)
    if usage is None:
        return None
    stat = {}
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            stat[name] = int(value) if value.isdigit() else 0
    except OSError:
        pass
    return usage - stat.get("total_inactive_file", stat.get("inactive_file", 0))  # v1 names it total_


def used_bytes() -> int:
    """Memory in use: the cgroup's working set when the cgroup is limited, else this process's resident memory."""
    files = _cgroup_files()
    if files is not None and cgroup_limit_bytes() is not None:
        found = working_set(files[0], files[2])
        if found is not None:
            return found
    return resident_bytes()


_lock = threading.Lock()
_rises: dict[str, deque[int]] = {}
_held: dict[int, int] = {}  # id of a running job's Watch -> what it was expected to take


def expected_bytes(kind: str) -> int:
    """What a job of this kind is expected to add: the largest rise of its last `KEPT_RUNS` runs (at least the
    floor), or the first guess when none has been watched."""
    with _lock:
        seen = _rises.get(kind)
        return max(FLOOR_BYTES, *seen) if seen else FIRST_GUESS_BYTES


def held_bytes() -> int:
    """What the jobs running now were expected to take, together."""
    with _lock:
        return sum(_held.values())


def record(kind: str, rise: int) -> None:
    with _lock:
        _rises.setdefault(kind, deque(maxlen=KEPT_RUNS)).append(max(0, rise))


def forget() -> None:
    """Drop what was learned (tests, benches)."""
    with _lock:
        _rises.clear()
        _held.clear()


def admit(kind: str, what: str = "This job") -> Watch:
    """A `Watch` of the new job (holding what it is expected to take until it closes) when a job of `kind` fits
    beside what is in use and what the running jobs hold; MemoryLimitError with a sentence when it would take
    the server past `SAFE_SHARE` of its limit."""
    used, limit, need = used_bytes(), limit_bytes(), expected_bytes(kind)
    with _lock:
        held = sum(_held.values())
        if used + held + need <= SAFE_SHARE * limit:
            return Watch(kind, need, used)
    running = f", {held / MB:,.0f} MB more held for the jobs running now" if held else ""
    raise MemoryLimitError(
        f"{what} was not started: the server is short of memory just now ({used / MB:,.0f} MB of its "
        f"{limit / MB:,.0f} MB in use{running}, and jobs like this one take up to {need / MB:,.0f} MB more). "
        "It is shared with other visitors, and going over would stop the app for everyone: try again in a "
        "minute, or ask for less work."
    )


class Watch:
    """How far memory in use rises while one job runs: `sample()` at its checkpoints, `close()` records the rise
    and lets go of what the job held. Made by `admit` (which holds `need` for it, under the lock)."""

    def __init__(self, kind: str, need: int, used: int) -> None:
        self.kind, self.start, self.peak = kind, used, used
        self._last = time.monotonic()
        _held[id(self)] = need

    def sample(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= SAMPLE_EVERY_S:
            self._last = now
            self.peak = max(self.peak, used_bytes())

    def close(self) -> int:
        """Record and return the job's rise (bytes); what it held is free again."""
        self.sample(force=True)
        with _lock:
            _held.pop(id(self), None)
        rise = self.peak - self.start
        record(self.kind, rise)
        give_back()
        return rise


def _libc_trim():
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path) if path else None
        return libc.malloc_trim if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_trim = _libc_trim()


def give_back() -> None:
    """Return freed heap pages to the system (glibc; elsewhere nothing). Freed tensors' memory otherwise stays in
    the process's heap and counts against the limit."""
    if _trim is not None:
        _trim(0)
