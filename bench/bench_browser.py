"""Dashboard speed in a real browser: Debian's chromium driven by Playwright.

Run: ``python -m bench.bench_browser`` (``KEA_BENCH_DIR`` keeps the built stores between
runs; otherwise they are built in a temporary folder, ~1 min for 50,000 records).
Goals (issue 8), at 50,000 records: first paint of the Overview < 2 s, a filter change
< 0.5 s, opening a study < 1 s.

Each figure is the time from the user's action until the page shows what was asked (a
chart or table drawn) **and** Streamlit is idle again (``stApp`` reports its script state
``notRunning``), read on the page's own clock (``performance.now()``, checked on every
animation frame): from the start of the navigation for the Overview and Studies pages,
from the mouse press on PTSD in the sidebar for a filter change and on a study's title
for opening it. ``*_wall`` is wall time in this process around the Playwright calls
(adds its round trips and, for the filter change, opening the dropdown). Before issue 8's
speed work the figures were taken with Playwright locator waits, whose retries back off
to 0.5 s steps: a page ready at 0.43 s was seen at ~0.8 s. "cold" is the first visit
after ``kea dashboard`` said it was ready (its warm-up ran the Overview once on the
server: imports loaded, the default view's queries cached; the browser's own cache is
empty), "warm" a new browser tab afterwards. ``KEA_BENCH_ROOT`` serves another checkout's
dashboard (an A/B run against main with this same measure).
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
SERVED = Path(os.environ.get("KEA_BENCH_ROOT") or ROOT)  # the checkout whose dashboard runs
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
        cwd=SERVED,
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


IDLE_JS = (
    "!document.querySelector('[data-testid=stApp][data-test-script-state=running]')"
    " && !!document.querySelector('" + IDLE + "')"
)
PRESSES = (  # every press, on the page clock (the grid cancels mousedown: pointerdown)
    "() => { window.__keaDowns = []; document.addEventListener('pointerdown',"
    " () => window.__keaDowns.push(performance.now()), true); }"
)


def _shown(css: str) -> str:
    """JS: an element matching ``css`` is drawn (has a box)."""
    return (
        f"[...document.querySelectorAll({css!r})].some(e => {{ const r = e.getBoundingClientRect();"
        " return r.width > 0 && r.height > 0; })"
    )


def _when_ready(page: Any, ready_js: str) -> float:
    """performance.now() (ms) of the first animation frame at which ``ready_js`` holds and
    Streamlit is idle."""
    handle = page.wait_for_function(
        f"() => (({ready_js}) && {IDLE_JS}) ? performance.now() : false",
        polling="raf",
        timeout=TIMEOUT_MS,
    )
    return float(handle.json_value())


def _navigate(page: Any, url: str, ready_js: str) -> tuple[float, float]:
    """(seconds from navigation start until ready on the page's clock, wall seconds)."""
    t = time.perf_counter()
    page.goto(url, wait_until="commit")
    done_ms = _when_ready(page, ready_js)
    return done_ms / 1000, time.perf_counter() - t


def _act(page: Any, action: Callable[[], Any], ready_js: str) -> tuple[float, float]:
    """(seconds from the action's last mouse press until ready on the page's clock, wall s)."""
    page.evaluate(PRESSES)
    t = time.perf_counter()
    action()
    done_ms = _when_ready(page, ready_js)
    wall = time.perf_counter() - t
    pressed = page.evaluate(f"() => window.__keaDowns.filter(x => x <= {done_ms!r})")
    return (done_ms - max(pressed)) / 1000, wall


CHART = "[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg"
TABLE = "[data-testid=stDataFrame] canvas"
FILTERED = "document.body.innerText.includes('studies match the filter')"


def measure(url: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}

    def keep(name: str, both: tuple[float, float]) -> None:
        out[name], out[name + "_wall"] = both

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            keep("overview_cold", _navigate(page, url, _shown(CHART)))
            warm = ctx.new_page()
            keep("overview_warm", _navigate(warm, url, _shown(CHART)))
            warm.close()
            keep("studies_page", _navigate(page, f"{url}/studies", _shown(TABLE)))
            page.wait_for_timeout(300)

            def pick_ptsd() -> None:
                box = page.locator("[data-testid=stMultiSelect]").filter(
                    has=page.get_by_text("Conditions", exact=True)
                )
                box.first.locator("input").click()
                page.get_by_role("option", name="PTSD", exact=True).click()

            keep("filter_change", _act(page, pick_ptsd, FILTERED))
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
            keep("open_study", _act(page, open_row, _shown(opened)))
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
    print(f"  {'':20s}" + "".join(f"{n:>10,}" for n in SIZES))
    for k in big:
        print(f"  {k:20s}" + "".join(f"{result[str(n)][k]:10.2f}" for n in SIZES))
    for k, v in GOALS_S.items():
        print(f"  goal {k} < {v} s at {SIZES[-1]:,}: {'ok' if result['ok'][k] else 'MISSED'}")
    return result


if __name__ == "__main__":
    run()
