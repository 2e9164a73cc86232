"""In a real browser: search with PubMed syntax, open the "new" tile, save the search and
download its Atom feed. Debian's chromium driven by Playwright (never a downloaded browser);
the dashboard launch follows tests/test_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import feedparser
import pytest
from factories import make_store
from test_browser import ARGS, CHROMIUM, OUT, require_chromium, serve

from pipeline.query import StudyFilter, connect, count_studies, headline
from pipeline.store import Store

QUERY = 'ptsd[ti] AND "randomized controlled trial"[pt]'
pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    require_chromium()
    db = make_store(tmp_path / "kea.sqlite", n=200, seed=31)
    today = date.today()
    with Store(db) as store:  # some PTSD RCT reports (by title and publication type), some new
        arts = list(store.iter_articles())
        changed = []
        for i, a in enumerate(arts[:24]):
            title = f"Fictional PTSD trial {i}" if i % 2 == 0 else a.title
            changed.append(
                replace(
                    a,
                    title=title,
                    publication_types=["Journal Article", "Randomized Controlled Trial"],
                    entrez_date=(today - timedelta(days=i)).isoformat() if i < 6 else a.entrez_date,
                )
            )
        store.upsert_batch(changed)
    with serve(db, tmp_path / "dashboard.log") as url:
        yield url, db


def test_search_new_tile_and_feed(dashboard: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, db = dashboard
    conn = connect(db)
    want = count_studies(conn, StudyFilter(search=QUERY))
    new = headline(conn)["new_last_30_days"]
    assert want > 0 and new > 0
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.goto(url)
            expect(page.get_by_text("Evidence map: condition × design")).to_be_visible(
                timeout=30_000
            )
            # the "new in the last 30 days" tile opens exactly those studies
            page.get_by_role("link", name=f"Open the {new:,} new studies").click()
            expect(page.get_by_text(f"{new:,} studies match")).to_be_visible(timeout=20_000)
            assert "added=" in page.url

            page.goto(f"{url}/studies")
            box = page.get_by_label("Search (PubMed syntax)", exact=True)
            box.fill("ptsd[ti] AND")  # invalid: one clear message, no other search run
            box.press("Enter")
            expect(page.get_by_text(re.compile(r"Search not run: .*AND has no term after it"))).to_be_visible(timeout=20_000)  # fmt: skip
            box.fill(QUERY)
            box.press("Enter")
            expect(page.get_by_text(f"{want:,} studies match")).to_be_visible(timeout=20_000)
            assert "q=ptsd%5Bti%5D" in page.url or "q=ptsd[ti]" in page.url
            expect(page).to_have_url(re.compile(r"sort=relevance"))  # a search orders by relevance
            marks = page.locator(".kea-snippet mark")
            expect(marks.first).to_be_visible(timeout=20_000)  # matched terms highlighted
            assert marks.first.inner_text().lower() == "ptsd"
            page.screenshot(path=str(OUT / "dashboard-search.png"), full_page=True)

            page.get_by_role("link", name="Save this search / feeds").click()
            expect(page.get_by_text("Follow what is new")).to_be_visible(timeout=20_000)
            page.get_by_label("Name", exact=True).fill("PTSD RCTs")
            page.get_by_role("button", name="Save this search").click()
            expect(page.get_by_text("Saved PTSD RCTs")).to_be_visible(timeout=20_000)
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_role("button", name="Feed", exact=True).click()
            feed = feedparser.parse(Path(dl.value.path()).read_bytes())
            assert not feed.bozo and feed.version == "atom10"
            assert feed.feed.title == "Ketamine Evidence Atlas: PTSD RCTs"
            assert len(feed.entries) == want  # every match is new to this fresh store
            assert all(e.link.startswith("https://pubmed.ncbi.nlm.nih.gov/") for e in feed.entries)
            assert all("ptsd" in e.title.lower() for e in feed.entries)
        finally:
            browser.close()
