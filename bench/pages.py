"""Page speed: sampling with and without the live view, and each page's cold and warm first render.

    python -m bench.pages [--model mnist-ddpm-linear]

1. The live view's cost: run_sampler with the page's throttled frame callback (grids of x_t, x_0 and
   noise for up to 16 images, each PNG-encoded as st.image does) against run_sampler alone; target <= 20%.
2. Throughput: 16 images with dpmpp_2m at 20 steps on a bundled MNIST model.
3. Render time of each page under Streamlit's AppTest (the home page through streamlit_app.py, whose
   navigation its page links need): "cold" is the first run in a fresh process
   (imports, model and data loads), "warm" a new session once the caches are filled.
4. The Training logs page on a 100,000-line metrics.jsonl: the first render reads and downsamples it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench.common import print_table

PAGES = (
    "streamlit_app.py",
    "app_pages/forward.py",
    "app_pages/samplers.py",
    "app_pages/ground_truth.py",
    "app_pages/inversion.py",
    "app_pages/guidance.py",
    "app_pages/toy.py",
    "app_pages/latent.py",
    "app_pages/training_logs.py",
    "app_pages/compare_checkpoints.py",
)


def live_view_table(model_name: str, repeats: int) -> None:
    from core.data.images import png_bytes
    from core.labs.samplers import SamplerSettings, run_sampler
    from ui.common.cache import zoo_model
    from ui.common.live import Throttle
    from ui.samplers.figures import frame_grids
    from ui.samplers.live import MIN_REFRESH_S

    loaded = zoo_model(model_name, "cpu")

    def live_render(steps: int):  # what the page does per refresh: three grids, PNG-encoded as st.image does
        throttle = Throttle(MIN_REFRESH_S)

        def render(frame) -> None:
            if throttle.ready(final=frame.index == steps - 1):
                for grid in frame_grids(frame):
                    png_bytes(grid)

        return render

    rows = []
    for sampler, steps in (("dpmpp_2m", 20), ("euler_ancestral", 100), ("ddpm", 1000)):
        settings = SamplerSettings(sampler=sampler, steps=steps, batch=16)
        plain, live = [], []
        for _ in range(repeats):
            plain.append(run_sampler(loaded, settings, every=steps + 1).seconds)
            live.append(run_sampler(loaded, settings, live_render(steps)).seconds)
        p, lv = statistics.median(plain), statistics.median(live)
        rows.append([f"{sampler} {steps}", p, lv, f"{(lv / p - 1) * 100:+.1f}%", f"{16 / p:.1f}"])
    print_table(
        f"1-2. Live view cost and throughput, {model_name}, 16 images, CPU (median of {repeats})",
        ["sampler", "plain s", "with live view s", "overhead [target <= +20%]", "images/s (plain)"],
        rows,
    )


RENDER_SCRIPT = """
import os, sys, time
sys.path.insert(0, os.getcwd())
from streamlit.testing.v1 import AppTest
page = sys.argv[1]
times = []
for _ in range(2):
    start = time.perf_counter()
    at = AppTest.from_file(os.path.join(os.getcwd(), page), default_timeout=600).run()
    times.append(time.perf_counter() - start)
    assert not at.exception, at.exception
print(f"{times[0]:.3f} {times[1]:.3f}")
"""


def render_table() -> None:
    rows = []
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    for page in PAGES:
        if not os.path.exists(page):
            continue
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", RENDER_SCRIPT, page], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            rows.append([page, "failed", out.stderr.strip().splitlines()[-1][:60], ""])
            continue
        cold, warm = map(float, out.stdout.split()[-2:])
        rows.append([page, cold, warm, wall])
    print_table(
        "3. Page render under AppTest (fresh process each page)",
        ["page", "cold first render s", "warm render s", "process wall s (incl. imports)"],
        rows,
    )


LOGS_SCRIPT = """
import os, sys, time
sys.path.insert(0, os.getcwd())
from streamlit.testing.v1 import AppTest
from tests.helpers import write_long_log
from pathlib import Path
root = Path(sys.argv[1])
write_long_log(root / "big" / "run")
os.environ["ATLAS_RUNS"] = str(root)
at = AppTest.from_file(os.path.join(os.getcwd(), "app_pages/training_logs.py"), default_timeout=600).run()
times = []
for smoothing in (0.6, 0.0, 0.9):
    start = time.perf_counter()
    at.multiselect(key="logs-runs").set_value(["big · runs folder"])
    at.slider(key="logs-smooth").set_value(smoothing)
    at.run()
    assert not at.exception, at.exception
    times.append(time.perf_counter() - start)
print(" ".join(f"{t:.3f}" for t in times))
"""


def logs_table() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", LOGS_SCRIPT, tmp], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:])
        return
    first, *rest = map(float, out.stdout.split())
    print_table(
        "4. Training logs page on a 100,000-line metrics.jsonl (with a truncated last line)",
        ["first render (reads the file) s", "later renders (cached) s", "target"],
        [[first, " / ".join(f"{t:.3f}" for t in rest), "<= 1 s"]],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-ddpm-linear")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    live_view_table(args.model, args.repeats)
    render_table()
    logs_table()


if __name__ == "__main__":
    main()
