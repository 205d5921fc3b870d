"""The real app under `streamlit run` on 127.0.0.1, offline, and the browser settings, for the end-to-end
tests and the browser benches (bench/browser.py, bench/memory.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",  # WebGL in software: the 3-D plots draw without a GPU
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(
    home: Path, prefix: Sequence[str] = (), root: Path = ROOT, **env_overrides: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run streamlit_app.py` on a free port, offline, with its own runs folder and HF cache under
    `home` and its log in home/server.log; yields (url, process) once the server answers, stops it after.
    `prefix` is a command the server is started through, which must end by exec-ing its arguments (bench/cloud.py
    puts the server into a memory cgroup that way, so the process yielded is the server itself). `root` is the
    checkout served (another one gives a bench's "before" figures)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(home / "hf"), "ATLAS_RUNS": str(home / "runs")}
    env.pop("ATLAS_MANIFEST", None)
    env |= env_overrides
    log = open(home / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"the app did not start:\n{(home / 'server.log').read_text()[-3000:]}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def busy(page) -> bool:
    """Whether the app is still running a script (its status widget or skeletons are showing)."""
    return bool(
        page.locator('[data-testid="stStatusWidget"]').count() + page.locator('[data-testid="stSkeleton"]').count()
    )


def _elements(page) -> int:
    return page.evaluate("document.querySelectorAll('*').length")


def settle(page, timeout: float = 180, quiet_s: float = 0.9) -> float:
    """Wait until the script run is over and the page has drawn it: not busy, and no element added or removed,
    for `quiet_s` in a row. Returns the seconds from the call to the moment the page last changed (what a
    user waits for)."""
    start = time.monotonic()
    end, idle_since, seen = start + timeout, None, -1
    time.sleep(0.1)  # let a click reach the server and the run begin
    while time.monotonic() < end:
        now, count = time.monotonic(), _elements(page)
        if busy(page) or count != seen:
            idle_since, seen = None, count
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= quiet_s:
            break
        time.sleep(0.1)
    return (idle_since or time.monotonic()) - start
