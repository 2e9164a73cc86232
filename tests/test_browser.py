"""End to end in a real browser: `kea dashboard` + Debian's chromium driven by Playwright.

Load, screenshot every page (``test-output/`` or ``$KEA_ARTIFACTS``), filter to PTSD RCTs,
open a study from its title (a dialog that fits the screen), download the RIS export and
parse it.
Needs /usr/bin/chromium (`make test` installs it); never downloads a browser.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import rispy
from factories import make_store

from pipeline.labels import BY_NAME
from pipeline.query import StudyFilter, connect, count_studies
from pipeline.records import Article
from pipeline.store import Store

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("KEA_ARTIFACTS") or ROOT / "test-output")  # screenshots
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HOSTILE = "Fictional <script>window.keaPwned=1</script> ptsd trial"

IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kea dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"dashboard not healthy on port {port} after {timeout} s")


def require_chromium() -> None:
    """Skip without Debian's chromium, but fail in CI, where `make test` installs it."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing (apt-get install chromium, or `make browser-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@contextmanager
def serve(db: Path, log_path: Path) -> Iterator[str]:
    """`kea dashboard` on a free local port for this store, until the block ends."""
    port = _free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kea.cli", "dashboard", "--db", str(db), "--port", str(port),
             "--host", "127.0.0.1"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            _wait_healthy(port, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    require_chromium()
    db = make_store(tmp_path / "kea.sqlite", n=300, seed=21)
    with Store(db) as store:  # a record whose title carries markup: must show as text
        store.upsert_batch([Article(pmid="90088888", title=HOSTILE, pub_year=2024)])
    with serve(db, tmp_path / "dashboard.log") as url:
        yield url, db


def _pick(page: object, label: str, option: str) -> None:
    """Choose ``option`` in the sidebar multiselect or selectbox labelled ``label``."""
    widget = page.locator("[data-testid=stMultiSelect], [data-testid=stSelectbox]").filter(
        has=page.get_by_text(label, exact=True)
    )
    widget.first.locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def test_filter_open_study_and_download_ris(dashboard: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, db = dashboard
    want = count_studies(connect(db), StudyFilter(conditions=("ptsd",), designs=("rct",)))
    assert want > 0
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.on("websocket", lambda ws: setattr(page, "_kea_ws", ws))
            page.goto(url)
            expect(page.get_by_text("Evidence map: condition × design")).to_be_visible(
                timeout=30_000
            )
            for name in ("Questions", "About", "Export", "Overview"):  # every page, on file
                page.get_by_role("link", name=name).first.click()
                expect(page.locator(IDLE)).to_be_attached(timeout=30_000)
                page.wait_for_timeout(500)
                expect(page.locator(IDLE)).to_be_attached(timeout=30_000)
                page.screenshot(path=str(OUT / f"dashboard-{name.lower()}.png"), full_page=True)
            page.get_by_role("link", name="Studies").first.click()
            expect(page.get_by_text("Studies", exact=True).first).to_be_visible()

            _pick(page, BY_NAME["conditions"].title, BY_NAME["conditions"].values["ptsd"])
            expect(page.get_by_text(re.compile(r"\d+ studies match"))).to_be_visible()
            _pick(page, "Design", "RCT")
            expect(page.get_by_text(f"{want:,} studies match")).to_be_visible(timeout=20_000)
            assert "c=ptsd" in page.url and "d=rct" in page.url

            page.wait_for_timeout(800)
            expect(page.locator(IDLE)).to_be_attached(timeout=30_000)
            page.screenshot(path=str(OUT / "dashboard-studies.png"), full_page=True)
            # at 1400 px the N and Outcome headers are in view without scrolling sideways
            grid = page.locator("[data-testid='stDataFrame']").first
            frame = grid.bounding_box()
            assert frame is not None
            # a click on the first row's title opens that study in a dialog
            page.mouse.move(frame["x"] + 35 + 100, frame["y"] + 35 + 10)  # a user's pointer
            page.wait_for_timeout(300)  # arrives before the click (the grid tracks hover)
            # the grid's toolbar offers no CSV download of its own: it would write a title
            # such as '=HYPERLINK(...)' as is, past the exports' formula guard
            toolbar = page.locator("[data-testid=stElementToolbar]").first
            expect(toolbar.get_by_role("button", name="Search")).to_be_visible(timeout=10_000)
            expect(toolbar.get_by_role("button", name="Download as CSV")).to_have_count(0)
            sent: list[bytes] = []  # what the server sends for the click
            socket_ = getattr(page, "_kea_ws", None)
            assert socket_ is not None, "the page's websocket was recorded"
            socket_.on(
                "framereceived", lambda m: sent.append(m if isinstance(m, bytes) else m.encode())
            )
            page.mouse.click(frame["x"] + 35 + 120, frame["y"] + 35 + 17)
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible(timeout=20_000)
            expect(page.locator(IDLE)).to_be_attached(timeout=30_000)
            # a title click reruns the table and study only (a fragment), not the sidebar
            sidebar = f"Minimum {BY_NAME['sample_size'].title.lower()}".encode()
            assert sent and not any(sidebar in m for m in sent), "the sidebar was rebuilt"
            expect(dialog.get_by_text("Labels", exact=True)).to_be_visible()
            assert "pmid=" in page.url
            page.screenshot(path=str(OUT / "dashboard-study.png"), full_page=True)
            box = dialog.bounding_box()
            assert box is not None and box["height"] <= 1100, "the dialog fits the screen"
            # only the open tab is built: the citations come when their tab is chosen
            expect(dialog.get_by_text("Vancouver", exact=True)).to_have_count(0)
            dialog.get_by_role("tab", name="Cite").click()
            expect(dialog.get_by_text("Vancouver", exact=True)).to_be_visible(timeout=20_000)
            # a rerun still in flight would draw the dialog again after Escape (seen under load)
            expect(page.locator(IDLE)).to_be_attached(timeout=30_000)
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden(timeout=10_000)

            page.get_by_role("link", name="Export").first.click()
            expect(page.get_by_text(f"{want:,} studies")).to_be_visible(timeout=20_000)
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_role("button", name="RIS").click()
            import zipfile

            assert dl.value.suggested_filename.endswith(".ris.zip")
            with zipfile.ZipFile(dl.value.path()) as zf:  # the file and its provenance
                name = next(n for n in zf.namelist() if n.endswith(".ris"))
                assert name + ".about.json" in zf.namelist()
                entries = rispy.loads(zf.read(name).decode("utf-8"))
            assert len(entries) == want
            assert all(e.get("title") for e in entries)
            page.screenshot(path=str(OUT / "dashboard-export.png"), full_page=True)

            # Record text with markup is text: visible literally, never executed.
            page.goto(f"{url}/studies?sc=all&q=keaPwned&pmid=90088888")
            expect(page.get_by_text("window.keaPwned=1", exact=False).first).to_be_visible(
                timeout=20_000
            )
            assert page.evaluate("() => window.keaPwned") is None
        finally:
            browser.close()


def test_dashboard_warms_its_first_page_before_saying_ready(
    dashboard: tuple[str, Path], tmp_path: Path
) -> None:
    """`kea dashboard` runs the Overview once (imports, cached queries) and then says so."""
    log = tmp_path / "dashboard.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "Dashboard ready" not in log.read_text():
        time.sleep(0.3)
    text = log.read_text()
    assert "Dashboard ready (first page prepared in" in text, text[-2000:]
