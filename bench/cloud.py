"""Streamlit Community Cloud rehearsed: the server inside a memory cgroup (1 GB, one core's share of the CPU, as a
container has), visitors in real browsers, and what the box went through.

    sudo python -m bench.cloud [--visitors 3] [--memory-mb 1024] [--cpus 1] [--scenario walk|load] [--app DIR]
    python -m bench.cloud --imports          # what each heavy import and each cache adds, in a fresh process

- walk: N visitors at once, each opening every page and pressing its main button at its defaults (Generate,
  Measure, Sweep, Train, Sample), one page after another; then every tab closes and the server idles.
- load: five visitors each start a long job (the guidance sweep, the ground-truth measure, the toy training,
  the checkpoint measure and sampling) and, while those run, a sixth opens Home three times; then the five
  tabs close mid-job and the server's CPU is read: closed tabs must stop their work.

Printed: per visitor and page, the seconds until the result showed (or the sentence that refused the job); the
box's peak working set (the cgroup's usage less its inactive file cache, read every 0.25 s: what the kernel
cannot drop before it kills), the server's peak resident memory (VmHWM), the cgroup's own peak counter (page
cache included), whether the server survived (the kernel's OOM kills in the cgroup), the health endpoint's
slowest answer, and memory and CPU once idle. `--app DIR` serves another checkout (the "before" column) with
this checkout's visitors. Needs root and a writable cgroup file system (v1 or v2); `--no-box` runs unconfined.
Goal (issue 33): 3 visitors peak <= 800 MB and alive, 5 alive, idle after every page <= 600 MB.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import print_table
from core import memory

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20

# A visitor's plan: (page path, button pressed at the page's defaults or None, text that shows the result).
WALK = [
    ("", None, "Diffusion Atlas"),
    ("forward", None, "x_t along the way"),
    ("samplers", "Generate", "Model calls (NFE)"),
    ("ground_truth", "Measure", "start points, measured in"),
    ("inversion", None, "RMS round-trip error"),
    ("guidance", "Sweep", "Download the table (CSV)"),
    ("toy", "Train", "Sliced W₂"),
    ("latent", "Generate", "Read as the requested class"),
    ("training_logs", None, "mnist-ddpm-linear · bundled"),
    ("compare_checkpoints", "Sample", "images/s"),
]
HEAVY = [  # long jobs, one per visitor in the load scenario
    ("guidance", "Sweep", "Download the table (CSV)"),
    ("ground_truth", "Measure", "start points, measured in"),
    ("toy", "Train", "Sliced W₂"),
    ("compare_checkpoints", "Measure", "FD-LeNet"),
    ("compare_checkpoints", "Sample", "images/s"),
]
REFUSED = "short of memory"
STEP_TIMEOUT_S = 900


# ---------------------------------------------------------------- the box


class Box:
    """A memory cgroup (and on cgroup v1 a cpu one) that the server is started inside."""

    def __init__(self, memory_mb: float, cpus: float) -> None:
        name = f"atlas-cloud-{uuid.uuid4().hex[:8]}"
        self.v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        if self.v2:
            self.memory = self.cpu = Path("/sys/fs/cgroup") / name
            self.memory.mkdir()
            (self.memory / "memory.max").write_text(str(int(memory_mb * MB)))
            (self.memory / "memory.swap.max").write_text("0")
            (self.cpu / "cpu.max").write_text(f"{int(cpus * 100_000)} 100000")
        else:
            self.memory, self.cpu = Path("/sys/fs/cgroup/memory") / name, Path("/sys/fs/cgroup/cpu") / name
            self.memory.mkdir()
            self.cpu.mkdir()
            (self.memory / "memory.limit_in_bytes").write_text(str(int(memory_mb * MB)))
            (self.cpu / "cpu.cfs_period_us").write_text("100000")
            (self.cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * 100_000)))

    def prefix(self) -> list[str]:
        """A command that moves itself into the box, then execs the server (so the server's pid is the one seen)."""
        joins = " && ".join(f"echo $$ > {d / 'cgroup.procs'}" for d in {self.memory, self.cpu})
        return ["sh", "-c", f'{joins} && exec "$@"', "sh"]

    def _int(self, name: str) -> int:
        try:
            return int((self.memory / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def working_set(self) -> int:
        return memory.working_set(self.memory, "memory.current" if self.v2 else "memory.usage_in_bytes") or 0

    def peak(self) -> int:
        return self._int("memory.peak" if self.v2 else "memory.max_usage_in_bytes")

    def oom_kills(self) -> int:
        text = (self.memory / ("memory.events" if self.v2 else "memory.oom_control")).read_text()
        return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill "))

    def close(self) -> None:
        for d in {self.memory, self.cpu}:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:  # the last process is still leaving
                    time.sleep(0.1)


# ---------------------------------------------------------------- watching the server


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Watcher:
    """Reads the box and the server every 0.25 s, and the health endpoint every second, in a thread."""

    url: str
    pid: int
    box: Box | None
    peak_working: int = 0
    slowest_health: float = 0.0
    health_fails: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last_health = 0.0
        while not self.stop.is_set():
            if self.box is not None:
                self.peak_working = max(self.peak_working, self.box.working_set())
            else:
                self.peak_working = max(self.peak_working, memory.status_kib("VmRSS", self.pid) * 1024)
            if time.monotonic() - last_health >= 1.0:
                last_health = time.monotonic()
                try:
                    tic = time.perf_counter()
                    urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=10).read()
                    self.slowest_health = max(self.slowest_health, time.perf_counter() - tic)
                except OSError:
                    self.health_fails += 1
            time.sleep(0.25)

    def __enter__(self) -> Watcher:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------- a visitor (run in its own process)


def visit(url: str, plan: list[tuple[str, str | None, str]], out: Path, hold: bool) -> None:
    """Walk `plan` in one browser tab, writing a JSON line per step to `out` as it goes. With `hold`, start each
    job and stay until told to leave (the file `out`.leave appears), without waiting for results."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.server import BROWSER_ARGS, CHROMIUM, settle

    with sync_playwright() as p, out.open("a") as log:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(STEP_TIMEOUT_S * 1000)
        for path, button, shows in plan:
            tic = time.perf_counter()
            try:
                page.goto(f"{url}/{path}")
                settle(page, timeout=STEP_TIMEOUT_S)
                pressed = page.get_by_role("button", name=button, exact=True).first if button else None
                if pressed is not None and not pressed.is_enabled():  # refused by its estimate before a click
                    outcome = "refused: " + _alerts(page)
                else:
                    if pressed is not None:
                        pressed.click()
                    outcome = "started" if hold else _outcome(page, shows, tic + STEP_TIMEOUT_S)
            except Exception as err:  # a bench reports, it does not stop: the server may be gone
                outcome = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
            log.write(
                json.dumps(
                    {"page": path or "home", "button": button, "seconds": time.perf_counter() - tic, "outcome": outcome}
                )
                + "\n"
            )
            log.flush()
            print(f"visitor {out.stem}: {path or 'home'} {button or ''} {outcome}", flush=True)
        if hold:
            leave = Path(str(out) + ".leave")
            while not leave.exists():
                time.sleep(0.2)
        browser.close()


def _alerts(page) -> str:
    alerts = page.locator('[data-testid="stAlert"]')
    texts = []
    for k in range(alerts.count()):
        try:  # an alert may be gone by the time it is read (the page redrew)
            texts.append(" ".join(alerts.nth(k).inner_text(timeout=2000).split())[:160])
        except Exception:
            continue
    return " | ".join(texts) or "(no text)"


def _outcome(page, shows: str, deadline: float) -> str:
    while time.perf_counter() < deadline:
        if page.get_by_text(shows, exact=False).count():
            from tests.e2e.server import settle

            settle(page, timeout=60)
            return "ok"
        text = _alerts(page)
        if REFUSED in text or "limit of" in text:
            return "refused: " + text
        if page.locator('[data-testid="stException"]').count():
            return "error box"
        if page.get_by_text("Connection error", exact=False).count():
            return "server gone"
        time.sleep(0.5)
    return "timed out"


def _visitor(url: str, plan: list, out: Path, hold: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cloud", "--visit", url, "--plan", json.dumps(plan), "--out", str(out)]
        + (["--hold"] if hold else []),
        cwd=ROOT,
    )


def _read(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


# ---------------------------------------------------------------- scenarios


@dataclass
class Served:
    """The server under test (in its box, unless --no-box) and its watcher, as a scenario sees them."""

    args: argparse.Namespace
    url: str
    proc: subprocess.Popen
    box: Box | None
    watcher: Watcher
    home: Path  # the server's runs folder and log, and the visitors' records

    def __post_init__(self) -> None:
        self.started = self.working_mb()

    def working_mb(self) -> float:
        """The box's working set, or unboxed the server's resident memory."""
        used = self.box.working_set() if self.box else memory.status_kib("VmRSS", self.proc.pid) * 1024
        return used / MB

    def cpu_cores(self, seconds: float) -> float:
        """The server's CPU use over the next `seconds`, in cores."""
        before, tic = cpu_seconds(self.proc.pid), time.perf_counter()
        time.sleep(seconds)
        return (cpu_seconds(self.proc.pid) - before) / (time.perf_counter() - tic)

    def summary(self, took: float | None = None) -> None:
        """Let the closed tabs' sessions end, read the idle server, and print the box's table."""
        time.sleep(10)
        idle_cpu, idle = self.cpu_cores(5), self.working_mb()
        box, watcher = self.box, self.watcher
        rows = [
            ["limit", f"{self.args.memory_mb:.0f} MB, {self.args.cpus:g} CPU" if box else "none (--no-box)"],
            ["server", (self.args.app or "this checkout") + "".join(f", {e}" for e in self.args.env)],
            ["working set at start (MB)", self.started],
            ["peak working set (MB)", watcher.peak_working / MB],
            ["server's peak resident memory, VmHWM (MB)", memory.status_kib("VmHWM", self.proc.pid) / 1024],
            ["cgroup's peak counter, page cache included (MB)", box.peak() / MB if box else "—"],
            ["OOM kills in the box", box.oom_kills() if box else "—"],
            ["server alive at the end", "yes" if self.proc.poll() is None else "NO"],
            ["working set idle, tabs closed (MB)", idle],
            ["server CPU idle, tabs closed (cores)", idle_cpu],
            ["slowest health check (s)", watcher.slowest_health],
            ["failed health checks", watcher.health_fails],
        ]
        if took is not None:
            rows.append(["all visitors done (s)", took])
        print_table("the box", ["", "value"], rows)


@contextmanager
def served(args: argparse.Namespace) -> Iterator[Served]:
    """The app served from this checkout (or --app's) with --env, in a Box unless --no-box, watched; the box is
    removed after, whatever happened."""
    from tests.e2e.server import app_server

    box = None if args.no_box else Box(args.memory_mb, args.cpus)
    app = Path(args.app).resolve() if args.app else ROOT
    env = dict(item.split("=", 1) for item in args.env)
    try:
        with (
            tempfile.TemporaryDirectory() as home,
            app_server(Path(home), prefix=box.prefix() if box else (), root=app, **env) as (url, proc),
            Watcher(url, proc.pid, box) as watcher,
        ):
            yield Served(args, url, proc, box, watcher, Path(home))
    finally:
        if box:
            box.close()


def walk(args: argparse.Namespace) -> None:
    with served(args) as server:
        outs = [server.home / f"visitor-{k}.jsonl" for k in range(args.visitors)]
        tic = time.perf_counter()
        plan = [step for step in WALK if not args.pages or (step[0] or "home") in args.pages.split(",")]
        visitors = [_visitor(server.url, plan, out) for out in outs]
        try:
            for v in visitors:
                v.wait()
        finally:  # interrupted: no browser outlives the bench
            for v in visitors:
                v.kill()
        took = time.perf_counter() - tic
        rows = []
        for k, out in enumerate(outs):
            rows += [[k + 1, r["page"], r["button"] or "(open)", r["seconds"], r["outcome"]] for r in _read(out)]
        print_table(
            f"{args.visitors} visitors, each page's main job at its defaults",
            ["visitor", "page", "pressed", "s", "outcome"],
            rows,
        )
        server.summary(took)


def load(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.server import BROWSER_ARGS, CHROMIUM, settle

    with served(args) as server:
        outs = [server.home / f"heavy-{k}.jsonl" for k in range(len(HEAVY))]
        heavy = [_visitor(server.url, [job], out, hold=True) for job, out in zip(HEAVY, outs, strict=True)]
        atexit.register(lambda: [v.kill() for v in heavy])
        while sum(len(_read(out)) for out in outs) < len(HEAVY):  # every job started
            time.sleep(0.5)
        time.sleep(5)
        home_s = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                tic = time.perf_counter()
                page.goto(server.url)
                page.get_by_role("heading", name="Diffusion Atlas").wait_for(timeout=300_000)
                settle(page, timeout=300)
                home_s.append(time.perf_counter() - tic)
                page.close()
            browser.close()
        busy_cpu = server.cpu_cores(3)
        for out in outs:
            Path(str(out) + ".leave").touch()
        for v in heavy:
            v.wait()
        print_table(
            "5 long jobs in 5 sessions, Home opened in a sixth",
            ["Home load 1 (s)", "2", "3", "server CPU while busy (cores)", "slowest health (s)"],
            [[*home_s, busy_cpu, server.watcher.slowest_health]],
        )
        print_table(
            "the jobs",
            ["page", "pressed", "outcome"],
            [[r["page"], r["button"], r["outcome"]] for out in outs for r in _read(out)],
        )
        server.summary()  # closed tabs: their scripts should have stopped at their next redraw


# ---------------------------------------------------------------- where memory goes


IMPORTS = [
    "numpy",
    "torch",
    "streamlit",
    "pandas",
    "plotly.graph_objects",
    "scipy.stats",
    "sklearn.mixture",
    "diffusers",
    "tensorboard",
    "skimage",
    "PIL.Image",
]


def imports() -> None:
    code = """
import importlib, json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
rows = []
for name in json.loads(sys.argv[1]):
    before, tic = rss(), time.perf_counter()
    try:
        importlib.import_module(name)
        rows.append([name, rss() - before, time.perf_counter() - tic])
    except Exception as err:
        rows.append([name, 0.0, type(err).__name__])
print(json.dumps(rows))
"""
    rows = json.loads(
        subprocess.run(
            [sys.executable, "-c", code, json.dumps(IMPORTS)], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    )
    print_table("each import in a fresh process, in this order (what it adds)", ["module", "MB", "s"], rows)
    shell = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ui.shell; "
            "print(' '.join(m for m in ('torch','diffusers','scipy','sklearn','tensorboard','pandas','skimage') "
            "if m in sys.modules)); print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.splitlines()
    print_table(
        "the app shell (import ui.shell: Home and the sidebar)",
        ["heavy modules imported", "RSS (MB)"],
        [[shell[0] or "none", shell[1]]],
    )
    code = """
import json, sys
import torch
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
from zoo.registry import load_registry
from zoo.loaders import load_model
from zoo.datasets import load_image_set
from core.labs.latent import encode_means
reg = load_registry()
rows = []
def cost(label, make):
    before = rss()
    value = make()
    rows.append([label, rss() - before])
    return value
for entry in reg.models.values():
    if entry.bundled:
        cost("model " + entry.name, lambda: load_model(entry))
train = cost("MNIST train (5,000 digits)", lambda: load_image_set(reg.dataset("mnist"), "train"))
cost("MNIST test (1,000 digits)", lambda: load_image_set(reg.dataset("mnist"), "test", 1000))
vae = load_model(reg.model("mnist-vae-2d")).module
cost("latent means of 5,000 digits", lambda: encode_means(vae, train.images))
print(json.dumps(rows))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        print(done.stderr[-2000:])
        return
    print_table(
        "what each cached value adds when it is first made (fresh process)",
        ["cache entry", "MB"],
        json.loads(done.stdout.splitlines()[-1]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["walk", "load"], default="walk")
    parser.add_argument("--visitors", type=int, default=3)
    parser.add_argument("--memory-mb", type=float, default=1024)
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--pages", help="walk only these pages (comma-separated: home,samplers,...)")
    parser.add_argument("--app", help="serve this checkout instead (the 'before' figures)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server's environment")
    parser.add_argument("--no-box", action="store_true", help="no cgroup: the server runs unconfined")
    parser.add_argument("--imports", action="store_true", help="print where memory goes, then stop")
    parser.add_argument("--visit", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` or a kill: unwind, so the box is removed
    if args.visit:
        visit(args.visit, [tuple(step) for step in json.loads(args.plan)], Path(args.out), args.hold)
    elif args.imports:
        imports()
    else:
        (walk if args.scenario == "walk" else load)(args)


if __name__ == "__main__":
    main()
