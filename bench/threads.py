"""Does torch run slower in a thread other than the main one? Small ops on 1 and 2 threads, per calling thread.

    python -m bench.threads [--repeats N] [--env NAME=VALUE ...] [--policy]

Each configuration is its own process (started here, driven over a pipe), because what matters turned out to
be the process's OpenMP teams and libgomp's wait policy (torch here uses GNU OpenMP, torch/lib/libgomp.so.1):

- "main": the calls run in the process's main thread;
- "new thread per batch": each batch of calls runs in a fresh `threading.Thread`, as Streamlit runs each rerun
  of a page's script in a new thread;
- "one worker thread": every batch runs in the same long-lived thread (fed through a queue);
- "+ other team": another thread of the process (the main thread, or for "main" a side thread) ran one 2-thread
  op first and stays alive, idle, so its OpenMP team (libgomp keeps one per thread that ran a parallel region,
  until that thread exits) lives beside the calls' own; "alone": no other thread ever ran a 2-thread op;
- "spin": no OpenMP variable set, libgomp's default: a team's workers spin between ops for a while before they
  sleep, unless the teams' threads outnumber the cores, when they sleep almost at once; "passive":
  OMP_WAIT_POLICY=PASSIVE, workers sleep at once (what core/__init__.py sets before torch loads).

Cases, each with torch.set_num_threads(1) and (2) called in the thread that runs them:
- UNet forward: the bundled mnist-ddpm-linear (687k parameters), one 28x28 image, inference mode;
- MLP step: one AdamW training step of the Toy lab's default MLP (23k parameters) on 512 2-D points;
- UNet train step (main thread only): one step of that UNet at its recipe's batch of 64, as
  `python -m zoo train mnist-ddpm-linear` takes.
"seconds" is a batch's wall time over its calls (thread start and join included), the median over repeats;
configurations take turns batch by batch, so drifts in the machine's load hit all alike. "cores busy" is the
process's CPU time over that wall time: near 2 while workers spin between ops, near 1 when they sleep, below 1
when the process waits for a core. "idle": nothing of this bench runs beside the calls; "one core busy": a
`while True: pass` process does. The titles give the load average (other people's work on a shared machine
shows there). --env passes more OpenMP variables (GOMP_SPINCOUNT, ...) to every measured process.
--policy prints core.device's threads policy on this machine and the threads this bench process runs with.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import torch

from bench.common import print_table
from core.device import THREAD_ROLES, threads_for

MODES = {"main": "main", "fresh": "new thread per batch", "worker": "one worker thread"}
CASES = {  # name -> (title, calls per batch, modes it runs in)
    "unet": ("UNet forward, 1 image", 8, tuple(MODES)),
    "mlp": ("MLP step, batch 512", 16, tuple(MODES)),
    "train": ("UNet train step, batch 64", 1, ("main",)),
}


def _workloads() -> dict[str, Callable[[], object]]:
    """The three cases, built with one thread (so that building them starts no OpenMP team)."""
    import copy

    from core.models.mlp import MLPConfig, build_mlp
    from zoo.loaders import load_model
    from zoo.registry import load_registry

    unet = load_model(load_registry().model("mnist-ddpm-linear")).module
    trained = copy.deepcopy(unet).train().requires_grad_(True)
    unet_opt = torch.optim.AdamW(trained.parameters(), lr=1e-4)
    mlp = build_mlp(MLPConfig(dim=2, width=64, depth=2))
    mlp_opt = torch.optim.AdamW(mlp.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    image, t = torch.randn(1, 1, 28, 28, generator=g), torch.tensor([500])
    points, times = torch.randn(512, 2, generator=g), torch.randint(0, 1000, (512,), generator=g)
    batch, batch_t = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 1000, (64,), generator=g)

    def forward() -> None:
        with torch.inference_mode():
            unet(image, t)

    def mlp_step() -> None:
        loss = (mlp(points, times) - points).square().mean()
        mlp_opt.zero_grad()
        loss.backward()
        mlp_opt.step()

    def train_step() -> None:
        loss = (trained(batch, batch_t).sample - batch).square().mean()
        unet_opt.zero_grad()
        loss.backward()
        unet_opt.step()

    return {"unet": forward, "mlp": mlp_step, "train": train_step}


def child(mode: str, other_team: bool) -> None:
    """One measured process: reads {"case", "threads"} lines, runs a batch in `mode`'s thread, answers
    {"seconds": per call, "cores": CPU time / wall time}."""
    torch.set_num_threads(1)
    cases = _workloads()
    for fn in cases.values():
        fn()  # warm up allocator and kernels on one thread
    park = threading.Event()
    if other_team:
        if mode == "main":  # a side thread runs one 2-thread op, then waits, alive (its team with it)

            def side() -> None:
                torch.set_num_threads(2)
                cases["unet"]()
                park.wait()

            threading.Thread(target=side).start()
        else:
            torch.set_num_threads(2)
            cases["unet"]()
            torch.set_num_threads(1)
    jobs: queue.Queue = queue.Queue()
    results: queue.Queue = queue.Queue()

    def worker() -> None:
        while (job := jobs.get()) is not None:
            results.put(job())

    worker_thread = threading.Thread(target=worker)
    if mode == "worker":
        worker_thread.start()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        fn, calls = cases[request["case"]], CASES[request["case"]][1]

        def batch(fn=fn, calls=calls, threads=request["threads"]) -> None:
            torch.set_num_threads(threads)  # in the thread that runs the calls: torch's setting is per thread
            for _ in range(calls):
                fn()

        cpu, start = time.process_time(), time.perf_counter()
        if mode == "main":
            batch()
        elif mode == "fresh":
            thread = threading.Thread(target=batch)
            thread.start()
            thread.join()
        else:
            jobs.put(batch)
            results.get()
        wall = time.perf_counter() - start
        answer = {"seconds": wall / calls, "cores": (time.process_time() - cpu) / wall}
        print(json.dumps(answer), flush=True)
    park.set()  # let the side thread and the worker end (their OpenMP teams end with them)
    jobs.put(None)
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join()


class Child:
    """A measured process. It imports torch before anything of ours, so libgomp reads the OpenMP variables this
    bench gives it (core/__init__.py would otherwise set OMP_WAIT_POLICY first)."""

    def __init__(self, mode: str, other_team: bool, passive: bool, env: dict[str, str]) -> None:
        self.mode, self.other_team, self.passive = mode, other_team, passive
        code = "import torch\nfrom bench.threads import main\nmain()"
        command = [sys.executable, "-c", code, "--child", mode, "--other-team", str(int(other_team))]
        variables = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
        if passive:
            variables["OMP_WAIT_POLICY"] = "PASSIVE"
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=variables
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    @property
    def label(self) -> str:
        team = "+ other team" if self.other_team else "alone"
        return f"{MODES[self.mode]}, {team}, {'passive' if self.passive else 'spin'}"

    def run(self, case: str, threads: int) -> dict[str, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"case": case, "threads": threads}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def measure(repeats: int, env: dict[str, str]) -> None:
    configs = [(mode, other, False) for mode in MODES for other in (False, True)]
    configs += [(mode, False, True) for mode in MODES]  # with OMP_WAIT_POLICY=PASSIVE a second team changes nothing
    children = [Child(mode, other, passive, env) for mode, other, passive in configs]
    results: dict[tuple, list[dict[str, float]]] = {}
    loads = {}
    try:
        for load in ("idle", "one core busy"):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None
            try:
                time.sleep(0.5)
                for _ in range(repeats):
                    for child_ in children:
                        for case, (_, _, modes) in CASES.items():
                            if child_.mode not in modes:
                                continue
                            for threads in (1, 2):
                                key = (case, child_.label, load, threads)
                                results.setdefault(key, []).append(child_.run(case, threads))
                loads[load] = os.getloadavg()[0]
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    finally:
        for child_ in children:
            child_.close()

    def median(case: str, label: str, load: str, threads: int, what: str = "seconds") -> float:
        return statistics.median(r[what] for r in results[(case, label, load, threads)])

    settings = "".join(f"; {k}={v}" for k, v in env.items())
    for case, (title, calls, modes) in CASES.items():
        rows = []
        for child_ in children:
            if child_.mode not in modes:
                continue
            label = child_.label
            rows.append(
                [
                    label,
                    median(case, label, "idle", 1),
                    median(case, label, "idle", 2),
                    median(case, label, "idle", 2, "cores"),
                    median(case, label, "one core busy", 1),
                    median(case, label, "one core busy", 2),
                    median(case, label, "one core busy", 2, "cores"),
                ]
            )
        print_table(
            f"{title}: seconds per call ({calls} a batch, median of {repeats}; {os.cpu_count()} cores, "
            f"load average {loads['idle']:.1f} idle / {loads['one core busy']:.1f} busy{settings})",
            ["thread running the calls", "idle 1 t", "idle 2 t", "cores busy", "busy 1 t", "busy 2 t", "cores busy"],
            rows,
        )


def policy() -> None:
    print_table(
        f"core.device.threads_for on this machine ({len(os.sched_getaffinity(0))} cores usable, "
        f"ATLAS_THREADS={os.environ.get('ATLAS_THREADS', 'unset')}, LOCAL_WORLD_SIZE="
        f"{os.environ.get('LOCAL_WORLD_SIZE', 'unset')})",
        ["role", "threads"],
        [[role, threads_for(role)] for role in THREAD_ROLES],
    )
    print(f"\nthis bench process runs torch with {torch.get_num_threads()} thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the measured processes")
    parser.add_argument("--policy", action="store_true", help="print the threads policy here and stop")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--other-team", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, bool(args.other_team))
    elif args.policy:
        policy()
    else:
        measure(args.repeats, dict(item.split("=", 1) for item in args.env))


if __name__ == "__main__":
    main()
