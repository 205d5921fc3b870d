"""Peak memory of the app's server after a new user's walk of every page with the bundled models.

    python -m bench.memory

Starts `streamlit run` offline on 127.0.0.1, walks every page in chromium using its main control (the
same walk as tests/e2e/test_walk.py), and reports the server's peak resident memory (VmHWM from
/proc/PID/status) after each page. Target: <= 1.5 GB.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import print_table
from core.memory import status_kib
from tests.e2e.server import BROWSER_ARGS, CHROMIUM, app_server, settle
from tests.e2e.test_walk import WALK


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home, app_server(Path(home)) as (url, proc):
        rows = [["(started)", status_kib("VmRSS", proc.pid) / 1024, status_kib("VmHWM", proc.pid) / 1024]]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(240_000)
            for path, use in WALK:
                page.goto(f"{url}/{path}")
                settle(page)
                use(page)
                settle(page)
                rss, peak = status_kib("VmRSS", proc.pid) / 1024, status_kib("VmHWM", proc.pid) / 1024
                rows.append([path or "home", rss, peak])
            browser.close()
    print_table(
        "Server memory during a walk of every page (bundled models, offline, CPU)",
        ["after page", "RSS MiB", "peak RSS MiB [target <= 1536]"],
        rows,
    )


if __name__ == "__main__":
    main()
