"""Feeds and `kea whatsnew` after an incremental crawl of the stand-in: records the second
crawl added, and a record it saw become retracted, appear; the Atom parses with feedparser."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import feedparser
import pytest
from test_crawl import crawl

from crawler.standin.records import revise_record, synthetic_records
from crawler.standin.server import StandinServer
from kea.cli import main
from pipeline import feeds
from pipeline import query as q
from pipeline.query import StudyFilter


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    db = tmp_path_factory.mktemp("feeds") / "kea.sqlite"
    old = synthetic_records(30, seed=21, end_date=date(2024, 12, 31))
    today = date.today()
    new = synthetic_records(
        6, seed=22, start_pmid=95_000_001, start_date=today - timedelta(days=2), end_date=today
    )
    retracted = replace(revise_record(old[3], today), fields={**old[3].fields, "retracted": True})
    retracted = replace(retracted, fields={**retracted.fields, "revised_date": today.isoformat()})
    with StandinServer(old) as srv:
        first = crawl(db, srv.url)
        assert first.returncode == 0, first.stderr
        assert "feeds: 1 written" in first.stderr  # the atlas feed, after the very first crawl
        assert (
            main(["saved", "add", "all synthetic", "--search", "synthetic[ti]", "--db", str(db)])
            == 0
        )
        assert (
            main(
                ["saved", "add", "one record", "--search", f"{old[3].pmid}[pmid]", "--db", str(db)]
            )
            == 0
        )
        assert main(["saved", "add", "first five", "--search", " OR ".join(f"{r.pmid}[pmid]" for r in old[:5]), "--db", str(db)]) == 0  # fmt: skip
        srv.upsert_records([*new, retracted])
        second = crawl(db, srv.url)
        assert second.returncode == 0, second.stderr
        assert "incremental" in second.stdout
    return {"db": db, "old": old, "new": new, "retracted": retracted, "stderr": second.stderr}


def _parse(path: Path) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def _pmid(entry: feedparser.FeedParserDict) -> str:
    return re.fullmatch(r"https://pubmed\.ncbi\.nlm\.nih\.gov/(\d+)/", entry.link).group(1)


def test_feeds_after_incremental_crawl(crawled: dict) -> None:
    db = crawled["db"]
    assert "feeds: 4 written" in crawled["stderr"]  # atlas + 3 saved searches
    atlas = _parse(feeds.feed_path(db, None))
    kinds = {(_pmid(e), e.title.split(":")[0]) for e in atlas.entries}
    for r in crawled["new"]:
        assert (r.pmid, "New") in kinds
    ret = crawled["retracted"]
    assert (ret.pmid, "RETRACTED") in kinds
    entry = next(e for e in atlas.entries if e.title.startswith("RETRACTED"))
    assert entry.title == "RETRACTED: " + ret.fields["title"]
    assert {t.term for t in entry.tags} >= {"retracted"}
    assert entry.authors and entry.summary.startswith("RETRACTED")
    assert crawled["old"][3].fields["journal"] in entry.summary
    # every entry: title, PubMed link, updated time, summary with the journal
    assert all(
        e.link.startswith("https://pubmed.ncbi.nlm.nih.gov/") and e.updated for e in atlas.entries
    )
    assert len({e.id for e in atlas.entries}) == len(atlas.entries)

    one = _parse(feeds.feed_path(db, "one record"))
    # first stored by the first crawl (new, in the 90-day window) and retracted by the second
    assert sorted(e.title.split(":")[0] for e in one.entries) == ["New (retracted)", "RETRACTED"]
    assert {_pmid(e) for e in one.entries} == {ret.pmid}
    five = _parse(feeds.feed_path(db, "first five"))
    assert {_pmid(e) for e in five.entries} == {r.pmid for r in crawled["old"][:5]}


def test_whatsnew_lists_only_the_last_crawl(crawled: dict, capsys: pytest.CaptureFixture) -> None:
    db = str(crawled["db"])
    assert main(["whatsnew", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "whole atlas: 6 new, 1 newly retracted" in out
    assert "all synthetic: 6 new, 1 newly retracted" in out
    assert "one record: 0 new, 1 newly retracted" in out
    assert "first five: 0 new, 1 newly retracted" in out
    for r in crawled["new"]:
        assert r.pmid in out
    assert f"RETRACTED {crawled['retracted'].pmid}" in out
    assert crawled["old"][10].pmid not in out  # stored by the first crawl, unchanged
    assert main(["whatsnew", "--saved", "ONE RECORD", "--db", db]) == 0
    only = capsys.readouterr().out
    assert "whole atlas" not in only and "one record: 0 new, 1 newly retracted" in only


def test_added_since_last_crawl_and_headline(crawled: dict) -> None:
    conn = q.connect(crawled["db"])
    got = {
        r["pmid"]
        for r in q.list_studies(
            conn, StudyFilter(added_since="last-crawl", scope="all"), limit=None
        )
    }
    assert got == {r.pmid for r in crawled["new"]}
    since = (date.today() - timedelta(days=2)).isoformat()
    by_date = q.list_studies(conn, StudyFilter(added_since=since, scope="all"), limit=None)
    assert {r["pmid"] for r in by_date} == {r.pmid for r in crawled["new"]}
    assert all(r["entrez_date"] >= since for r in by_date)
    h = q.headline(conn)
    assert h["newly_retracted"] == 1  # counted whatever its labels (the crawl does not classify)


def test_feed_of_a_removed_search_goes(crawled: dict, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "kea.sqlite"
    shutil.copy(crawled["db"], db)
    assert main(["saved", "remove", "first five", "--db", str(db)]) == 0
    assert not feeds.feed_path(db, "first five").exists()
    with sqlite3.connect(db) as c:
        assert {r[0] for r in c.execute("SELECT name FROM saved_searches")} == {
            "all synthetic",
            "one record",
        }
