"""The server's memory: what it uses, what it may use, and whether a new job fits in what is left.

Streamlit Community Cloud gives an app about 1 GB and kills the whole app when it goes over, losing every
visitor's session. So a job started on a page must first be admitted (`admit`): it runs at once when the memory
in use plus what that kind of job has lately taken stays under its share of the limit; otherwise it waits, in
turn, for the jobs running now to end (the page says so, and its Stop gives up), and is refused with a sentence
only when waiting cannot help. The app degrades, slower, instead of dying.

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
- Two shares of the limit. A job beside others must stay under `SHARED_SHARE`; one with no other job running
  may go to `ALONE_SHARE`. What admission does not count (a page's first imports, its figures, what a job
  allocates between two readings) took the 1 GB box 60-120 MB past the figures it had counted
  (bench/cloud.py); the lower share for concurrent jobs keeps that margin where several unknowns add up, and a
  lone job, which cannot run any sooner by waiting, is still let through when it fits under the higher one.
- Waiting is first come, first served (a big job is not starved by small ones), bounded by the server's time
  per job (by then every running job has ended), and spends nothing: it starts no work.
- After a job, freed heap is handed back to the system (`give_back`: glibc's malloc_trim), so a server that was
  busy does not hold its peak for the rest of its life; `tune_heap` (at import of core) caps glibc's
  per-thread heaps, which Streamlit's thread per rerun otherwise multiplies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from core.errors import AtlasError
from core.limits import max_job_seconds, memory_limit_mb

SHARED_SHARE = 0.78  # of the limit: what jobs running beside others keep the server under (see above)
ALONE_SHARE = 0.9  # of the limit: a job with none running beside it; above, the next burst may have it killed
WAIT_POLL_S = 1.0  # a waiting job re-reads memory (and its page says so) at least this often
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


_lock = threading.Condition()  # guards what follows; notified when a job ends or a waiting one leaves the queue
_rises: dict[str, deque[int]] = {}
_held: dict[int, int] = {}  # id of a running job's Watch -> what it was expected to take
_queue: deque[object] = deque()  # the waiting jobs' tickets, first come first


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
        _queue.clear()


def _fits(used: int, need: int, limit: int) -> bool:
    """Whether a job expected to take `need` fits now, beside the running jobs' holds (under `_lock`)."""
    share = SHARED_SHARE if _held else ALONE_SHARE
    return used + sum(_held.values()) + need <= share * limit


def admit(
    kind: str, what: str = "This job", waiting: Callable[[str], None] | None = None, patience: float | None = None
) -> Watch:
    """A `Watch` of the new job (holding what it is expected to take until it closes) once a job of `kind` fits
    beside what is in use and what the running jobs hold (see the module's docstring for the two shares).

    Without `waiting`, a job that does not fit now is refused at once (MemoryLimitError with a sentence). With
    it, the job waits its turn while other jobs run, and `waiting` is called with a sentence at least every
    `WAIT_POLL_S` (a page shows it; an exception it raises, as Streamlit's Stop does, gives up the place); it is
    refused when nothing is running that could free memory, or after `patience` seconds (the server's time per
    job: by then every job running when it came has ended)."""
    limit, need, ticket = limit_bytes(), expected_bytes(kind), object()
    patience = max_job_seconds() if patience is None else patience
    start = time.monotonic()
    with _lock:
        _queue.append(ticket)
    try:
        while True:
            used = used_bytes()
            with _lock:
                if _queue[0] is ticket and _fits(used, need, limit):
                    return Watch(kind, need, used)
                held, running, ahead = sum(_held.values()), len(_held), _queue.index(ticket)
                waited = time.monotonic() - start
                if waiting is None or waited >= patience or not (running or ahead):
                    raise MemoryLimitError(_refusal(what, used, limit, held, need, waited))
            waiting(_waiting(used, limit, held, running, ahead, need, waited))
            with _lock:
                _lock.wait(WAIT_POLL_S)
    finally:
        with _lock:
            if ticket in _queue:
                _queue.remove(ticket)
            _lock.notify_all()


def _refusal(what: str, used: int, limit: int, held: int, need: int, waited: float) -> str:
    running = f", {held / MB:,.0f} MB more held for the jobs running now" if held else ""
    after = f" It waited {waited:.0f} s for the other visitors' jobs to end." if waited >= 1 else ""
    return (
        f"{what} was not started: the server is short of memory just now ({used / MB:,.0f} MB of its "
        f"{limit / MB:,.0f} MB in use{running}, and jobs like this one take up to {need / MB:,.0f} MB more).{after} "
        "It is shared with other visitors, and going over would stop the app for everyone: try again in a "
        "minute, or ask for less work."
    )


def _waiting(used: int, limit: int, held: int, running: int, ahead: int, need: int, waited: float) -> str:
    jobs = f"{running} job{'s' if running != 1 else ''} of other visitors" if running else "no job"
    queue = f", and {ahead} more wait{'s' if ahead == 1 else ''} ahead of this one" if ahead else ""
    return (
        f"Waiting for memory ({waited:.0f} s so far): {jobs} running ({held / MB:,.0f} MB held for "
        f"{'them' if running != 1 else 'it'}){queue}; {used / MB:,.0f} MB of the server's {limit / MB:,.0f} MB are "
        f"in use, and this job may take {need / MB:,.0f} MB more. It starts as soon as it fits; "
        "**Stop** (top right) gives up."
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
        """Record and return the job's rise (bytes); what it held is free again (a waiting job is told)."""
        self.sample(force=True)
        rise = self.peak - self.start
        record(self.kind, rise)
        give_back()  # before a waiting job reads what is in use
        with _lock:
            _held.pop(id(self), None)
            _lock.notify_all()
        return rise


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, where this process runs on it (malloc_trim and mallopt are its own); else None."""
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path) if path else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def give_back() -> None:
    """Return freed heap pages to the system (glibc; elsewhere nothing). Freed tensors' memory otherwise stays in
    the process's heap and counts against the limit."""
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)


M_ARENA_MAX = -8  # glibc's mallopt parameter number
HEAP_ARENAS = 2


def tune_heap() -> bool:
    """Cap glibc's malloc at `HEAP_ARENAS` heaps (arenas), unless the operator chose (MALLOC_ARENA_MAX, or
    arena_max in GLIBC_TUNABLES); True when it did. glibc gives each new thread that allocates its own heap, up
    to eight per core, and a freed block in one of them cannot serve another thread: with Streamlit's new thread
    per rerun, a server's memory stayed about 65 MB higher after a toy training (tests/test_memory.py counts the
    heaps). Takes effect for heaps made afterwards, so it is called on importing core."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _libc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, HEAP_ARENAS) == 1
