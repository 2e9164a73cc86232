"""Dashboard speed in a real browser: Debian's chromium driven by Playwright.

Run: ``python -m bench.bench_browser`` (``KEA_BENCH_DIR`` keeps the built stores between
runs; otherwise they are built in a temporary folder, ~1 min for 50,000 records).
Goals (issue 8), at 50,000 records: first paint of the Overview < 2 s, a filter change
< 0.5 s, opening a study < 1 s.

Each figure is wall time from the user's action until the page shows what was asked
(a chart or table drawn) **and** Streamlit is idle again (``stApp`` reports its script
state ``notRunning``): navigation for the Overview and Studies pages, choosing PTSD in the
sidebar for a filter change, a click on a study's title for opening it. "cold" is the
first visit after ``kea dashboard`` said it was ready (its warm-up ran the Overview once
on the server: imports loaded, the default view's queries cached; the browser's own cache
is empty), "warm" a new browser tab afterwards.
The browser is ``/usr/bin/chromium`` (``executable_path``); none is ever downloaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SIZES = tuple(int(n) for n in os.environ.get("KEA_BENCH_SIZES", "1000,50000").split(","))
GOALS_S = {"overview_cold": 2.0, "open_study": 1.0, "filter_change": 0.5}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
TIMEOUT_MS = 60_000


def build_store(folder: Path, n: int) -> Path:
    """The factory store of ``n`` fictional records (reused when already built)."""
    path = folder / f"bench-{n}.sqlite"
    if path.is_file():
        return path
    sys.path.insert(0, str(ROOT / "tests"))
    from factories import make_store

    t = time.perf_counter()
    make_store(path.with_suffix(".tmp"), n=n, seed=50)
    path.with_suffix(".tmp").rename(path)
    print(f"built {n:,}-record store in {time.perf_counter() - t:.1f} s")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(db: Path) -> Iterator[str]:
    """``kea dashboard`` on a free port, from the moment it says it is ready (it has run
    its warm-up) until the block ends."""
    import threading

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kea.cli", "dashboard", "--db", str(db), "--port", str(port)]
        + ["--host", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    ready = threading.Event()

    def drain() -> None:  # read every line, so the server never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Dashboard ready"):
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(120):
            raise RuntimeError("kea dashboard did not say it was ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def _timed(action: Callable[[], Any], page: Any, ready: str) -> float:
    """Seconds from ``action`` until ``ready`` is visible and the script is idle."""
    t = time.perf_counter()
    action()
    page.locator(ready).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stApp][data-test-script-state=running]')"
        " && !!document.querySelector('" + IDLE + "')",
        timeout=TIMEOUT_MS,
        polling=20,
    )
    return time.perf_counter() - t


CHART = "[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg"
TABLE = "[data-testid=stDataFrame] canvas"


def measure(url: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            out["overview_cold"] = _timed(lambda: page.goto(url), page, CHART)
            warm = ctx.new_page()
            out["overview_warm"] = _timed(lambda: warm.goto(url), warm, CHART)
            warm.close()
            out["studies_page"] = _timed(lambda: page.goto(f"{url}/studies"), page, TABLE)
            page.wait_for_timeout(300)

            def pick_ptsd() -> None:
                box = page.locator("[data-testid=stMultiSelect]").filter(
                    has=page.get_by_text("Conditions", exact=True)
                )
                box.first.locator("input").click()
                page.get_by_role("option", name="PTSD", exact=True).click()

            out["filter_change"] = _timed(pick_ptsd, page, "text=/\\d+ studies match the filter/")
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
            grid = page.locator("[data-testid=stDataFrame]").first.bounding_box()
            assert grid is not None

            page.mouse.move(grid["x"] + 35 + 100, grid["y"] + 35 + 10)  # the pointer arrives
            page.wait_for_timeout(300)

            x = float(os.environ.get("KEA_BENCH_ROW_X", 35 + 120))  # 12: the row's tick box

            def open_row() -> None:  # a click on the first row's title
                page.mouse.click(grid["x"] + x, grid["y"] + 35 + 17)

            opened = os.environ.get("KEA_BENCH_OPENED", "[role=dialog] [data-testid=stTable]")
            out["open_study"] = _timed(open_row, page, opened)
        finally:
            browser.close()
    return out


def run() -> dict[str, Any]:
    """Measure at each size, print a table, return the numbers."""
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} missing (make browser-deps): browser benchmark skipped")
        return {"skipped": f"{CHROMIUM} missing"}
    keep = os.environ.get("KEA_BENCH_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result: dict[str, Any] = {}
        for n in SIZES:
            db = build_store(folder, n)
            with serve(db) as url:
                result[str(n)] = measure(url)
    big = result[str(SIZES[-1])]
    result["goals_s"] = GOALS_S
    result["ok"] = {k: big[k] < v for k, v in GOALS_S.items()}
    print("dashboard in chromium (seconds until drawn and idle)")
    print(f"  {'':16s}" + "".join(f"{n:>10,}" for n in SIZES))
    for k in big:
        print(f"  {k:16s}" + "".join(f"{result[str(n)][k]:10.2f}" for n in SIZES))
    for k, v in GOALS_S.items():
        print(f"  goal {k} < {v} s at {SIZES[-1]:,}: {'ok' if result['ok'][k] else 'MISSED'}")
    return result


if __name__ == "__main__":
    run()
